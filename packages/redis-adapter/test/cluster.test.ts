// ioredis 5 and 6 Cluster against a real 6-node Redis Cluster (3 masters, 3 replicas): every
// connection (slots refresh, nodes, MOVED/ASK targets, reconnections after a restart and a
// failover) goes through the connector; thousands of client lifetimes run on a handful of fds and
// leave no client TIME_WAIT, beside the same workload without the connector.
// Tests in this file run one after another: some restart or kill nodes.
import net from 'node:net'
import tls from 'node:tls'
import { SocketRecycler } from '@fdrecycle/core'
import { recycledConnector } from '@fdrecycle/redis-adapter'
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest'
import { clusterHealthy, pidOf, redisCli, startNode, stopNode, waitForAsync, type RedisNode } from '../../../test/helpers/redis.js'
import { openSockets, socketsSince } from '../../../test/helpers/system.js'
import { type ClusterClass, PATIENT, ended, fdsSettle, majors, newEntries, passthroughStats, recyclingSupported, released, timeWaitTuples } from './helpers.js'

const servers = inject('redis')
const host = servers.host
const nodes = servers.cluster
const ports = nodes.map((n) => n.port)
const startupNodes = nodes.slice(0, 3).map((n) => ({ host, port: n.port }))

type Cluster = InstanceType<ClusterClass>

interface NodeView {
  id: string
  port: number
  flags: string[]
  master: string
  slots: [number, number][]
}

/** CLUSTER NODES as one node sees it. */
function clusterView(port: number): NodeView[] {
  return redisCli(port, ['CLUSTER', 'NODES'])
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(' ')
      const slots = f.slice(8).filter((s) => /^\d/.test(s)).map((s) => {
        const [a, b] = s.split('-').map(Number)
        return [a!, b ?? a!] as [number, number]
      })
      return { id: f[0]!, port: Number(f[1]!.split(':')[1]!.split('@')[0]), flags: f[2]!.split(','), master: f[3]!, slots }
    })
}

function liveNode(): RedisNode {
  const node = nodes.find((n) => pidOf(n) !== null)
  if (!node) throw new Error('no cluster node is running')
  return node
}

function ownerOf(slot: number): NodeView {
  const owner = clusterView(liveNode().port).find((v) => v.flags.includes('master') && !v.flags.includes('fail') && v.slots.some(([a, b]) => slot >= a && slot <= b))
  if (!owner) throw new Error(`no master serves slot ${slot}`)
  return owner
}

function keyslot(key: string): number {
  return Number(redisCli(liveNode().port, ['CLUSTER', 'KEYSLOT', key]).trim())
}

function nodeByPort(port: number): RedisNode {
  return nodes.find((n) => n.port === port)!
}

async function healthy(): Promise<void> {
  await waitForAsync(() => clusterHealthy(nodes), 'a healthy cluster (3 masters, 3 replicas, cluster_state:ok)', 30_000)
}

/** Connections made without the connector: ioredis's own net.createConnection / tls.connect. */
function spyPlainConnects() {
  return [vi.spyOn(net, 'createConnection'), vi.spyOn(net, 'connect'), vi.spyOn(tls, 'connect')]
}
const calls = (spies: ReturnType<typeof spyPlainConnects>): number => spies.reduce((n, s) => n + s.mock.calls.length, 0)

interface Workload {
  cycles: number
  concurrency: number
  durationMs: number
  peakFds: number
}

/** `cycles` client lifetimes, `concurrency` at a time: new Cluster, SET, GET (checked), quit(). */
async function churn(Cluster: ClusterClass, cycles: number, concurrency: number, redisOptions: Record<string, unknown>): Promise<Workload> {
  const baseline = openSockets()
  let peakFds = 0
  let next = 0
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (next < cycles) {
      const i = next++
      const cluster = new Cluster(startupNodes, { redisOptions })
      const errors: Error[] = []
      cluster.on('error', (err: Error) => errors.push(err))
      const key = `churn:${i}`
      await cluster.set(key, `v${i}`)
      const value = await cluster.get(key)
      if (value !== `v${i}`) throw new Error(`cycle ${i}: GET ${key} returned ${value}`)
      await cluster.quit()
      await ended(cluster)
      if (errors.length > 0) throw new Error(`cycle ${i}: ${errors.map((e) => e.message).join('; ')}`)
      peakFds = Math.max(peakFds, socketsSince(baseline))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { cycles, concurrency, durationMs: performance.now() - t0, peakFds }
}

describe.each(majors)('$name, Redis Cluster', ({ name, Cluster }) => {
  let recycler: SocketRecycler
  let baselineFds: Set<string>
  let spies: ReturnType<typeof spyPlainConnects>
  const clusters: Cluster[] = []

  beforeEach(async () => {
    await healthy()
    baselineFds = openSockets()
    // The tests check who closes first; a generous finDelayMs (and quitTimeoutMs, PATIENT) keeps a
    // loaded machine from deciding it.
    recycler = new SocketRecycler({ finDelayMs: 5000 })
    spies = spyPlainConnects()
  })

  afterEach(async () => {
    vi.restoreAllMocks()
    for (const c of clusters.splice(0)) c.disconnect()
    await recycler.close()
    // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
    await released(recycler)
    expect(recycler.stats().fdsCreated).toBe(recycler.stats().fdsClosed)
    expect(await fdsSettle(baselineFds)).toBe(0)
  })

  // Four rounds in A B B A order, so that a noisy neighbour on the shared cores weighs on both.
  // With recycling off both sides would be plain ioredis: one round through the connector checks
  // what is left (every reply, no connection past the connector, one plain fd per connection).
  // npm test: 200 cycles per side; `npm run soak` (FDRECYCLE_SOAK=1): 2,000 (ioredis 6) and 500
  // (ioredis 5). 200 took up to 35 s in a full npm test on a loaded 2-core machine (400 took 65 s):
  // the timeout is four times that.
  const perRound = (process.env.FDRECYCLE_SOAK ? (name === 'ioredis 6' ? 2000 : 500) : 200) / 4
  const churnTimeout = process.env.FDRECYCLE_SOAK ? 900_000 : 150_000
  const rounds = recyclingSupported ? 4 : 1
  const cycles = rounds * perRound

  it(`${cycles} connect/command/quit cycles: a handful of fds, no client TIME_WAIT; the same without the connector`, async () => {
    const Connector = recycledConnector(recycler, PATIENT)
    const totals = {
      recycled: { ms: [] as number[], peakFds: 0, timeWait: 0 },
      plain: { ms: [] as number[], peakFds: 0, timeWait: 0, connections: 0 },
    }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['recycled', 'plain'] as const) : (['plain', 'recycled'] as const)
      for (const mode of recyclingSupported ? order : (['recycled'] as const)) {
        const before = timeWaitTuples(ports)
        const plainBefore = calls(spies)
        const run = await churn(Cluster, perRound, 4, mode === 'recycled' ? { Connector } : {})
        if (mode === 'recycled') {
          await released(recycler)
          expect(calls(spies)).toBe(plainBefore)
        } else {
          totals.plain.connections += calls(spies) - plainBefore
          // The last closes reach TIME_WAIT with their FIN exchange, not after a timer.
          await new Promise((resolve) => setImmediate(resolve))
        }
        const t = totals[mode]
        t.ms.push(run.durationMs)
        t.peakFds = Math.max(t.peakFds, run.peakFds)
        t.timeWait += newEntries(before, timeWaitTuples(ports)).length
      }
    }
    const stats = recycler.stats()
    console.table([
      { mode: 'recycledConnector', cycles, connections: stats.connections, 'fds created': stats.fdsCreated, 'peak fds (over baseline)': totals.recycled.peakFds, 'client TIME_WAIT': totals.recycled.timeWait, 'ms per round': totals.recycled.ms.map(Math.round).join(' ') },
      { mode: 'plain ioredis', cycles, connections: totals.plain.connections, 'fds created': totals.plain.connections, 'peak fds (over baseline)': totals.plain.peakFds, 'client TIME_WAIT': totals.plain.timeWait, 'ms per round': totals.plain.ms.map(Math.round).join(' ') },
    ])
    expect(stats.connections).toBeGreaterThanOrEqual(cycles * 2)
    if (recyclingSupported) {
      expect(stats.fdsCreated).toBeLessThanOrEqual(40)
      expect(stats.resetsSent).toBe(0)
      expect(stats.finSentFirst).toBe(0)
      expect(stats.drainTimeouts).toBe(0)
      expect(totals.recycled.timeWait).toBe(0)
      // The comparison shows what the measurement sees: plain clients leave TIME_WAIT behind.
      expect(totals.plain.timeWait).toBeGreaterThan(cycles / 2)
    } else {
      expect(stats).toMatchObject(passthroughStats(stats.connections))
    }
  }, churnTimeout)

  it('MOVED and ASK redirections reach their target through the connector', async () => {
    const cluster = new Cluster(startupNodes, { redisOptions: { Connector: recycledConnector(recycler, PATIENT) } })
    clusters.push(cluster)
    const tag = `{redirect-${name.replace(/\W/g, '')}-${Date.now()}}`
    const key = `${tag}:a`
    const fresh = `${tag}:b`
    const slot = keyslot(key)
    await cluster.set(key, 'moved-value')
    const source = ownerOf(slot)
    const masters = clusterView(source.port).filter((v) => v.flags.includes('master'))
    const target = masters.find((v) => v.id !== source.id)!
    const connectionsBefore = recycler.stats().connections

    // The client's slot table: where it sends a command for the slot first.
    const slotTable = (): string | undefined => (cluster as unknown as { slots: string[][] }).slots[slot]?.[0]
    expect(slotTable()).toBe(`${host}:${source.port}`)

    // ASK: the slot is migrating and `fresh` is not on the source yet.
    redisCli(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id])
    redisCli(source.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id])
    try {
      expect(slotTable()).toBe(`${host}:${source.port}`)
      expect(await cluster.set(fresh, 'asked-value')).toBe('OK')
      expect(await cluster.get(fresh)).toBe('asked-value')
      expect(redisCli(target.port, ['CLUSTER', 'COUNTKEYSINSLOT', String(slot)]).trim()).toBe('1')
      // MOVED: the rest of the slot moves, the client's slot table is now stale.
      redisCli(source.port, ['MIGRATE', host, String(target.port), '', '0', '5000', 'KEYS', key])
    } finally {
      for (const port of [target.port, source.port, ...masters.filter((m) => m.id !== source.id && m.id !== target.id).map((m) => m.port)]) {
        redisCli(port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id])
      }
    }
    // Still the source in the client's table (an ASK does not change it): this GET meets MOVED.
    expect(slotTable()).toBe(`${host}:${source.port}`)
    expect(await cluster.get(key)).toBe('moved-value')
    expect(slotTable()).toBe(`${host}:${target.port}`)
    expect(await cluster.get(fresh)).toBe('asked-value')
    expect(ownerOf(slot).id).toBe(target.id)
    expect(recycler.stats().connections).toBeGreaterThan(connectionsBefore)
    expect(calls(spies)).toBe(0)
    await cluster.quit()
    await ended(cluster)
    await healthy()
  })

  it('a master restarted: the client reconnects to it through the connector', async () => {
    const cluster = new Cluster(startupNodes, { redisOptions: { Connector: recycledConnector(recycler, PATIENT) } })
    clusters.push(cluster)
    cluster.on('error', () => {})
    const key = `restart:{${name}}`
    await cluster.set(key, 'before')
    const owner = nodeByPort(ownerOf(keyslot(key)).port)
    const connectionsBefore = recycler.stats().connections
    // SIGTERM and start again within cluster-node-timeout: no failover, same node id, empty data.
    stopNode(owner, 'SIGTERM')
    startNode(owner)
    await waitForAsync(async () => (await cluster.set(key, 'after').catch(() => null)) === 'OK', 'a SET to the restarted master', 15_000)
    expect(await cluster.get(key)).toBe('after')
    expect(ownerOf(keyslot(key)).port).toBe(owner.port)
    expect(recycler.stats().connections).toBeGreaterThan(connectionsBefore)
    expect(calls(spies)).toBe(0)
    await cluster.quit()
    await ended(cluster)
    await healthy()
  })

  it('a master killed mid-run: its replica takes over, commands recover, nothing leaks', async () => {
    const cluster = new Cluster(startupNodes, { redisOptions: { Connector: recycledConnector(recycler, PATIENT) } })
    clusters.push(cluster)
    cluster.on('error', () => {})
    const keys = Array.from({ length: 64 }, (_, i) => `chaos:${i}`)
    const slots = keys.map(keyslot)
    const killed = nodeByPort(ownerOf(slots[0]!).port)
    const replica = clusterView(killed.port).find((v) => v.master === clusterView(killed.port).find((s) => s.flags.includes('myself'))!.id)!
    let ok = 0
    let failed = 0
    let stop = false
    const wrong: string[] = []
    const worker = async (w: number): Promise<void> => {
      for (let i = w; !stop; i += 4) {
        const key = keys[i % keys.length]!
        try {
          await cluster.set(key, `v${i}`)
          const value = await cluster.get(key)
          // Another worker may have written the key in between; a reply from another key is wrong.
          if (!value?.startsWith('v')) wrong.push(`${key}=${value}`)
          ok++
        } catch {
          failed++
        }
      }
    }
    const workers = [0, 1, 2, 3].map(worker)
    await waitForAsync(() => ok >= 200, '200 commands before the kill', 30_000)
    // A replica that has not finished its first sync cannot take over ("disconnected from master for
    // longer than allowed"): one restarted by an earlier test syncs only after the master's
    // repl-diskless-sync-delay (5 s), which a quick earlier test may not leave it.
    await waitForAsync(() => redisCli(replica.port, ['INFO', 'replication']).includes('master_link_status:up'), `replica ${replica.port} in sync`, 30_000)
    const pid = pidOf(killed)!
    process.kill(pid, 'SIGKILL')
    await waitForAsync(() => pidOf(killed) === null, `redis-server ${pid} to exit`, 10_000)
    // The replica is promoted after cluster-node-timeout and an election.
    await waitForAsync(() => {
      try {
        const view = clusterView(replica.port)
        return view.find((v) => v.id === replica.id)!.flags.includes('master') && redisCli(replica.port, ['CLUSTER', 'INFO']).includes('cluster_state:ok')
      } catch {
        return false
      }
    }, `replica ${replica.port} promoted`, 30_000)
    const okAtFailover = ok
    await waitForAsync(() => ok >= okAtFailover + 500, '500 commands after the failover', 30_000)
    stop = true
    await Promise.all(workers)
    // Commands recovered: a full round over every key, all answered.
    for (const key of keys) expect(await cluster.set(key, 'final')).toBe('OK')
    expect(await cluster.get(keys[0]!)).toBe('final')
    expect(wrong).toEqual([])
    expect(ownerOf(slots[0]!).id).toBe(replica.id)
    expect(calls(spies)).toBe(0)
    // The old master comes back as a replica of the new one.
    startNode(killed)
    await healthy()
    await cluster.quit()
    await ended(cluster)
    await released(recycler)
    const stats = recycler.stats()
    console.table([{ major: name, 'ok commands': ok, 'failed during failover': failed, connections: stats.connections, 'fds created': stats.fdsCreated, resetsSent: stats.resetsSent, drainTimeouts: stats.drainTimeouts }])
    expect(failed).toBeLessThan(ok)
    expect(stats.active).toBe(0)
  })

  it('documents an ioredis limit: the Cluster pub/sub subscriber connection ignores redisOptions.Connector', async () => {
    const cluster = new Cluster(startupNodes, { redisOptions: { Connector: recycledConnector(recycler, PATIENT) } })
    clusters.push(cluster)
    await cluster.subscribe('cluster:chan')
    // ClusterSubscriber builds its Redis from host/port/tls only (ioredis 5 and 6).
    expect(calls(spies)).toBe(1)
    await cluster.quit()
    await ended(cluster)
  })
})
