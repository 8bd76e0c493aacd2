#!/usr/bin/env node
// ioredis Cluster clients created, used and quit one after another, 4 at a time (a job runner, a
// CLI, a handler that makes its own client): once with ioredis's own sockets, once with
// `Connector: recycledConnector(recycler)`. Every reply is checked; each run reports what it
// left behind. Uses the cluster named with --nodes, or starts a throwaway one (redis-server and
// redis-cli from PATH) in a temp dir on loopback and stops it at the end.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Redis from 'ioredis'
import { SocketRecycler, isRecyclingSupported, recycledConnector } from '@fdrecycle/redis-adapter'

const usage = `usage: node index.mjs [--nodes HOST:PORT,...] [--cycles N] [--concurrency N]
  --nodes        a Redis Cluster's nodes to start from; without it a throwaway 6-node cluster is started
  --cycles       client lifetimes per run: new Cluster, SET, GET, quit() (default 1000)
  --concurrency  clients at a time (default 4)`

let args
try {
  args = parseArgs({
    options: {
      nodes: { type: 'string' },
      cycles: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  console.error(`${err.message}\n${usage}`)
  process.exit(2)
}
if (args.help) {
  console.log(usage)
  process.exit(0)
}
const count = (name) => {
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer\n${usage}`)
    process.exit(2)
  }
  return n
}
const CYCLES = count('cycles')
const CONCURRENCY = count('concurrency')

const fds = () => readdirSync('/proc/self/fd').length

/** Client-side TIME_WAIT towards the cluster's ports, as 4-tuples (`ss`); null without ss. */
function timeWaits(ports) {
  try {
    const filter = ports.map((p) => `dport = :${p}`).join(' or ')
    const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( ${filter} )`], { encoding: 'utf8' })
    return new Set(out.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 4).map((f) => `${f[2]}>${f[3]}`))
  } catch {
    return null
  }
}

/** Connections the cluster has accepted so far: INFO stats of every node, over one admin connection each. */
async function acceptedConnections(admins) {
  let total = 0
  for (const admin of admins) total += Number(/total_connections_received:(\d+)/.exec(await admin.info('stats'))[1])
  return total
}

// ---- a throwaway cluster --------------------------------------------------------------------

function freePort() {
  // Below the ephemeral range, with the cluster bus port (+10000) free too.
  return new Promise((resolve, reject) => {
    const port = 20000 + Math.floor(Math.random() * 2700)
    const probe = (p, next) => {
      const server = net.createServer().once('error', () => next(false)).listen(p, '127.0.0.1', () => server.close(() => next(true)))
    }
    probe(port, (a) => (a ? probe(port + 10000, (b) => (b ? resolve(port) : freePort().then(resolve, reject))) : freePort().then(resolve, reject)))
  })
}

function sleep(ms) {
  spawnSync('sleep', [String(ms / 1000)])
}

async function startCluster() {
  for (const bin of ['redis-server', 'redis-cli']) {
    if (spawnSync(bin, ['--version']).status !== 0) {
      console.error(`${bin} not found: install Debian's redis-server and redis-tools (apt-get install redis-server redis-tools), or pass --nodes`)
      process.exit(1)
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-example-redis-'))
  const ports = []
  while (ports.length < 6) {
    const p = await freePort()
    if (!ports.includes(p)) ports.push(p)
  }
  const pidFile = (port) => join(dir, `${port}.pid`)
  const stop = () => {
    const pids = []
    for (const port of ports) {
      try {
        const pid = Number(readFileSync(pidFile(port), 'utf8'))
        process.kill(pid, 'SIGTERM')
        pids.push(pid)
      } catch {}
    }
    // Gone, or a zombie (the daemons are reparented; their new parent reaps them).
    const alive = (pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        return stat[stat.lastIndexOf(')') + 2] !== 'Z'
      } catch {
        return false
      }
    }
    for (let i = 0; i < 100 && pids.some(alive); i++) sleep(50)
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 })
  }
  process.once('exit', stop)
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130))
  for (const port of ports) {
    const r = spawnSync('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--daemonize', 'yes', '--pidfile', pidFile(port), '--logfile', join(dir, `${port}.log`), '--dir', dir,
    ])
    if (r.status !== 0) throw new Error(`redis-server on ${port} did not start: ${r.stderr}`)
  }
  const cli = (port, ...command) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...command], { encoding: 'utf8' })
  for (let i = 0; ports.some((p) => cli(p, 'PING').stdout.trim() !== 'PONG'); i++) {
    if (i > 200) throw new Error('redis-server did not answer PING')
    sleep(50)
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
  // Ready: every node says ok, and every replica has synced with its master.
  const ready = (p) => {
    if (!cli(p, 'CLUSTER', 'INFO').stdout.includes('cluster_state:ok')) return false
    const replication = cli(p, 'INFO', 'replication').stdout
    return !replication.includes('role:slave') || replication.includes('master_link_status:up')
  }
  for (let i = 0; !ports.every(ready); i++) {
    if (i > 600) throw new Error('the cluster did not reach cluster_state:ok')
    sleep(50)
  }
  // redis-cli --cluster create made the first three masters: start from those.
  return ports.slice(0, 3)
}

// ---- the workload ---------------------------------------------------------------------------

async function run(startupNodes, ports, admins, redisOptions) {
  const accepted = await acceptedConnections(admins)
  const before = timeWaits(ports)
  const baseline = fds()
  let peakFds = 0
  let next = 0
  const t0 = performance.now()
  const worker = async () => {
    while (next < CYCLES) {
      const i = next++
      const cluster = new Redis.Cluster(startupNodes, { redisOptions })
      await cluster.set(`example:${i}`, `value ${i}`)
      const value = await cluster.get(`example:${i}`)
      if (value !== `value ${i}`) throw new Error(`GET example:${i} returned ${value}`)
      await cluster.quit()
      if (cluster.status !== 'end') await new Promise((resolve) => cluster.once('end', resolve))
      peakFds = Math.max(peakFds, fds() - baseline)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const ms = performance.now() - t0
  await new Promise((resolve) => setTimeout(resolve, 50)) // the last FIN exchanges
  const after = timeWaits(ports)
  return {
    ms,
    peakFds,
    connections: (await acceptedConnections(admins)) - accepted,
    timeWait: before && after ? [...after].filter((t) => !before.has(t)).length : 'n/a (no ss)',
  }
}

const startupNodes = args.nodes
  ? args.nodes.split(',').map((hp) => {
      const i = hp.lastIndexOf(':')
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) }
    })
  : (await startCluster()).map((port) => ({ host: '127.0.0.1', port }))

// Every node's port (masters and replicas), as the cluster itself reports them.
const probe = new Redis({ ...startupNodes[0], retryStrategy: () => null })
probe.on('error', () => {})
let ports
try {
  ports = (await probe.cluster('NODES')).trim().split('\n').map((line) => Number(/:(\d+)@/.exec(line)[1]))
  await probe.quit()
} catch (err) {
  console.error(`cannot read CLUSTER NODES from ${startupNodes[0].host}:${startupNodes[0].port}: ${err.message}`)
  process.exit(1)
}

console.log(`Redis Cluster: ${ports.length} nodes on ${startupNodes[0].host} (ports ${ports.join(', ')})${args.nodes ? '' : ', started for this run'}`)
console.log(`${CYCLES} client lifetimes per run (new Cluster, SET, GET, quit), ${CONCURRENCY} at a time; recycling ${isRecyclingSupported() ? 'supported' : 'NOT supported here (plain sockets)'}\n`)

// One plain admin connection per node for INFO; quit() at the end, so Redis closes them first.
const admins = ports.map((port) => new Redis({ host: startupNodes[0].host, port }))
const plain = await run(startupNodes, ports, admins, {})
const recycler = new SocketRecycler()
const recycled = await run(startupNodes, ports, admins, { Connector: recycledConnector(recycler) })
await Promise.all(admins.map(async (admin) => {
  await admin.quit()
  if (admin.status !== 'end') await new Promise((resolve) => admin.once('end', resolve))
}))
const stats = recycler.stats()
const fdsBeforeClose = fds()
await recycler.close()
const closedFds = fdsBeforeClose - fds()

const rows = [
  ['replies checked', CYCLES * 2, CYCLES * 2],
  ['connections the cluster accepted', plain.connections, recycled.connections],
  ['fds (sockets) created', plain.connections, stats.fdsCreated],
  ['connections on a reused fd', 0, stats.reusedConnections],
  ['client TIME_WAIT left behind', plain.timeWait, recycled.timeWait],
  ['time (ms)', Math.round(plain.ms), Math.round(recycled.ms)],
]
console.log(`${''.padEnd(40)}${'plain'.padStart(8)}${'recycled'.padStart(10)}`)
for (const [label, a, b] of rows) console.log(`  ${label.padEnd(38)}${String(a).padStart(8)}${String(b).padStart(10)}`)
console.log(`\nrecycler.close() closed the ${stats.fdsCreated - stats.fdsClosed} fds it still owned (${closedFds} fewer open fds in this process)`)
