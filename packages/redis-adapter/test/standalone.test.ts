// ioredis 5 and 6 against a real standalone redis-server, with and without the connector: same
// replies, same events and errors, same options' behaviour; what differs is what the sockets leave.
import { once } from 'node:events'
import net from 'node:net'
import { InvalidArgumentError, RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { RecycledConnector, recycledConnector, type ConnectorOptions } from '@fdrecycle/redis-adapter'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { blackholeListener } from '../../../test/helpers/blackhole.js'
import { openSockets } from '../../../test/helpers/system.js'
import {
  PATIENT, closedPort, ended, expectRecycled, fdsSettle, majors, median, newEntries, type RedisClient, recyclingSupported, released, settle,
  streamOf, timeWaitTuples, trace,
} from './helpers.js'

const servers = inject('redis')
const host = servers.host
const port = servers.standalone.port

describe.each(majors)('$name, standalone', ({ Redis }) => {
  let recycler: SocketRecycler
  let baselineFds: Set<string>
  const clients: RedisClient[] = []
  const client = (options: Record<string, unknown> = {}, recycled = true): RedisClient => {
    const c = new Redis({ host, port, ...(recycled ? { Connector: recycledConnector(recycler, PATIENT) } : {}), ...options })
    clients.push(c)
    return c
  }

  beforeEach(() => {
    baselineFds = openSockets()
    // The tests check who closes first; a generous finDelayMs keeps a loaded machine from deciding it.
    recycler = new SocketRecycler({ finDelayMs: 5000 })
  })

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await recycler.close()
    // close() waits for the recycled sockets in use; plain ones (a Unix path, every socket with
    // recycling off) close on their own, a few ticks after disconnect().
    await released(recycler)
    // Every fd the recycler owned is closed: the process is back where it started.
    expect(recycler.stats().fdsCreated).toBe(recycler.stats().fdsClosed)
    expect(await fdsSettle(baselineFds)).toBe(0)
  })

  it('runs commands on a recycled socket and gets the same replies', async () => {
    const r = client()
    const key = `standalone:${Math.random()}`
    const binary = Buffer.from([0, 1, 2, 255, 13, 10, 36])
    await r.set(key, binary)
    expect(await r.getBuffer(key)).toEqual(binary)
    const replies = await r.pipeline().incr(`${key}:n`).incr(`${key}:n`).hset(`${key}:h`, 'f', 'v').hgetall(`${key}:h`).exec()
    expect(replies).toEqual([[null, 1], [null, 2], [null, 1], [null, { f: 'v' }]])
    await expect(r.call('NO-SUCH-COMMAND')).rejects.toThrow(/unknown command/)
    const stream = streamOf(r)
    expect(stream).toBeInstanceOf(RecycledSocket)
    expect((stream as RecycledSocket).recycled).toBe(recyclingSupported)
    await r.quit()
  })

  it('quit(): Redis closes first, the fd is reused, no RST and no client TIME_WAIT', async () => {
    const before = timeWaitTuples([port])
    for (let i = 0; i < 50; i++) {
      const r = client()
      expect(await r.incr('standalone:quit')).toBeGreaterThan(0)
      expect(await r.quit()).toBe('OK')
      await ended(r)
      await released(recycler)
    }
    expectRecycled(recycler.stats(), { connections: 50, fdsCreated: 1, peerClosedFirst: 50, finSentFirst: 0, resetsSent: 0 })
    if (recyclingSupported) expect(newEntries(before, timeWaitTuples([port]))).toEqual([])
  })

  it('disconnect(): the QUIT goodbye makes Redis close first; no stray reply, no RST, no client TIME_WAIT', async () => {
    // Without the connector, the same loop leaves one client TIME_WAIT per disconnect: the
    // measurement below sees TIME_WAIT when there is some.
    const plainBefore = timeWaitTuples([port])
    for (let i = 0; i < 5; i++) {
      const r = client({}, false)
      await r.ping()
      r.disconnect()
      await ended(r)
    }
    expect(newEntries(plainBefore, timeWaitTuples([port])).length).toBeGreaterThan(0)

    const before = timeWaitTuples([port])
    const errors: Error[] = []
    for (let i = 0; i < 50; i++) {
      const r = client()
      r.on('error', (err: Error) => errors.push(err))
      expect(await r.ping()).toBe('PONG')
      r.disconnect()
      await ended(r)
      await released(recycler)
    }
    expect(errors).toEqual([])
    expectRecycled(recycler.stats(), { connections: 50, fdsCreated: 1, peerClosedFirst: 50, finSentFirst: 0, resetsSent: 0, discardedBytes: 0 })
    // With recycling off, the connector's disconnect() is ioredis's own end(): TIME_WAIT as above.
    if (recyclingSupported) expect(newEntries(before, timeWaitTuples([port]))).toEqual([])
  })

  it('quit() then disconnect() (a shutdown habit): no second QUIT to a server that is closing', async () => {
    const run = async (recycled: boolean): Promise<unknown[]> => {
      const written: number[] = []
      const errors: Error[] = []
      for (let i = 0; i < 10; i++) {
        const r = client({}, recycled)
        r.on('error', (err: Error) => errors.push(err))
        await r.ping()
        await r.quit()
        r.disconnect()
        await ended(r)
        written.push(streamOf(r).bytesWritten)
        await released(recycler)
      }
      return [written, errors]
    }
    const plain = await run(false)
    // Bytes written per connection, as without the connector: no QUIT goodbye after the app's QUIT.
    expect(await run(true)).toEqual(plain)
    expect(recycler.stats().finSentFirst).toBe(0)
    expect(recycler.stats().resetsSent).toBe(0)
  })

  it('disconnect() with replies in flight: the same outcome as without the connector', async () => {
    const outcome = async (recycled: boolean): Promise<unknown[]> => {
      const r = client({}, recycled)
      const log = trace(r)
      await r.set('standalone:inflight', 'v')
      const pending = [r.get('standalone:inflight'), r.incr('standalone:inflight:n').then(() => 'incr'), r.ping()]
      r.disconnect()
      const settled = await Promise.allSettled(pending)
      await ended(r)
      return [settled.map((s) => (s.status === 'fulfilled' ? s.value : `rejected: ${(s.reason as Error).message}`)), log]
    }
    const plain = await outcome(false)
    const recycled = await outcome(true)
    expect(recycled).toEqual(plain)
    expect(recycled[0]).toEqual(['v', 'incr', 'PONG'])
  })

  it('disconnect() of a subscriber: no stray reply reaches the app', async () => {
    const sub = client()
    const errors: Error[] = []
    sub.on('error', (err: Error) => errors.push(err))
    const pub = client()
    await sub.subscribe('standalone:chan')
    const got = once(sub, 'message')
    await pub.publish('standalone:chan', 'hello')
    expect((await got)[1]).toBe('hello')
    sub.disconnect()
    await ended(sub)
    await pub.quit()
    expect(errors).toEqual([])
    await released(recycler)
    expect(recycler.stats().finSentFirst).toBe(0)
    expect(recycler.stats().resetsSent).toBe(0)
  })

  it('disconnect() during a blocking command: our FIN follows the QUIT after quitTimeoutMs, not finDelayMs; the same outcome', async () => {
    // Redis answers nothing while a client is blocked in BLPOP: the QUIT waits behind it. The
    // connector shortens this socket's finDelayMs to quitTimeoutMs; our FIN then goes, and Redis
    // drops the blocked client with what is queued behind it, as for a plain client's FIN. The
    // recycler's own finDelayMs is far past the test's timeout: only the connector's can pass.
    const slow = new SocketRecycler({ finDelayMs: 600_000 })
    const admin = client({}, false)
    try {
      const run = async (recycled: boolean): Promise<unknown[]> => {
        const r = client(recycled ? { Connector: recycledConnector(slow, { quitTimeoutMs: 100 }) } : {}, false)
        const log = trace(r)
        await r.ping()
        const key = `standalone:queued:${Math.random()}`
        const blocked = r.blpop(`standalone:empty:${Math.random()}`, 0).then(String, (err: Error) => `rejected: ${err.message}`)
        const queued = r.incr(key).then(String, (err: Error) => `rejected: ${err.message}`)
        r.disconnect()
        const outcome = [await blocked, await queued]
        await ended(r)
        // the command queued behind the blocking one never ran on the server
        return [outcome, await admin.get(key), log]
      }
      const plain = await run(false)
      expect(plain[0]).toEqual(['rejected: Connection is closed.', 'rejected: Connection is closed.'])
      expect(plain[1]).toBeNull()
      expect(await run(true)).toEqual(plain)
      await released(slow)
      expectRecycled(slow.stats(), { connections: 1, finSentFirst: 1, resetsSent: 0 })
    } finally {
      await slow.close()
    }
  })

  it('disconnect() while connecting ends as without the connector', async () => {
    const run = async (recycled: boolean): Promise<unknown[]> => {
      const r = client({}, recycled)
      const log = trace(r)
      const connecting = r.connect().catch((err: Error) => `rejected: ${err.message}`)
      r.disconnect()
      await ended(r)
      return [await Promise.race([connecting, 'pending']), r.status, log]
    }
    const plain = await run(false)
    // ioredis calls connect() in the constructor too: the explicit one is rejected at once.
    expect(await run(true)).toEqual(plain)
  })

  it('disconnect(true) and a server-side kill reconnect through the connector', async () => {
    const r = client({ connectionName: 'fdrecycle-reconnect' })
    const admin = client()
    await r.ping()
    const first = streamOf(r)
    r.disconnect(true)
    await once(r, 'ready')
    const second = streamOf(r)
    expect(second).not.toBe(first)
    expect(second).toBeInstanceOf(RecycledSocket)
    // CLIENT KILL: Redis closes the connection; retryStrategy brings it back on a recycled fd.
    const id = await r.client('ID')
    expect(await admin.client('KILL', 'ID', String(id))).toBe(1)
    await once(r, 'ready')
    expect(streamOf(r)).not.toBe(second)
    expect(streamOf(r)).toBeInstanceOf(RecycledSocket)
    expect(await r.client('GETNAME')).toBe('fdrecycle-reconnect')
    await r.quit()
    await admin.quit()
    expect(recycler.stats().connections).toBe(4)
  })

  it('connection refused: the same events, errors and retries as without the connector', async () => {
    const closed = await closedPort()
    for (const target of ['127.0.0.1', 'localhost']) {
      const run = async (recycled: boolean): Promise<string[]> => {
        const r = client({ host: target, port: closed, retryStrategy: (times: number) => (times <= 2 ? 5 : null) }, recycled)
        const log = trace(r)
        await expect(r.ping()).rejects.toThrow()
        await ended(r)
        return log
      }
      const plain = await run(false)
      expect(plain.filter((l) => l.startsWith('error')).length).toBe(3)
      expect(await run(true)).toEqual(plain)
    }
  })

  it('connectTimeout: the same ETIMEDOUT and retries as without the connector', async () => {
    const hole = blackholeListener()
    // The first connection fills the backlog-0 queue; connects after it hang in SYN_SENT.
    const filler = net.connect(hole.port, '127.0.0.1')
    await once(filler, 'connect')
    try {
      const run = async (recycled: boolean): Promise<string[]> => {
        const r = client({ port: hole.port, connectTimeout: 100, retryStrategy: (times: number) => (times <= 1 ? 5 : null) }, recycled)
        const log = trace(r)
        await ended(r)
        return log
      }
      const plain = await run(false)
      expect(plain).toContain('error Error ETIMEDOUT connect connect ETIMEDOUT')
      expect(await run(true)).toEqual(plain)
    } finally {
      filler.destroy()
      hole.close()
    }
  })

  it('lazyConnect: no connection before the first command', async () => {
    const r = client({ lazyConnect: true })
    expect(r.status).toBe('wait')
    await settle()
    expect(recycler.stats().connections).toBe(0)
    expect(await r.ping()).toBe('PONG')
    expect(recycler.stats().connections).toBe(1)
    await r.quit()
    // disconnect() of a client that never connected: nothing to say goodbye to.
    const idle = client({ lazyConnect: true })
    const log = trace(idle)
    idle.disconnect()
    await ended(idle)
    await settle()
    expect(log).toEqual(['close', 'end'])
    expect(recycler.stats().connections).toBe(1)
  })

  it('enableOfflineQueue: the same queueing and rejections as without the connector', async () => {
    const run = async (recycled: boolean): Promise<unknown[]> => {
      const off = client({ enableOfflineQueue: false }, recycled)
      const rejected = await off.ping().catch((err: Error) => err.message)
      await once(off, 'ready')
      const afterReady = await off.ping()
      await off.quit()
      const queued = client({}, recycled)
      const early = await queued.echo('queued before connect')
      await queued.quit()
      return [rejected, afterReady, early]
    }
    const plain = await run(false)
    expect(plain[0]).toMatch(/enableOfflineQueue/)
    expect(await run(true)).toEqual(plain)
  })

  it('a Unix socket passes through to a plain socket', async () => {
    const r = client({ host: undefined, port: undefined, path: servers.standalone.unixSocket })
    expect(await r.ping()).toBe('PONG')
    const stream = streamOf(r)
    expect(stream).toBeInstanceOf(RecycledSocket)
    expect((stream as RecycledSocket).recycled).toBe(false)
    r.disconnect()
    await ended(r)
    await released(recycler)
    // the plain socket's fd counts as created and closed (stats balance in every mode), none pooled
    expectRecycled(recycler.stats(), { connections: 1, fdsCreated: 1, fdsClosed: 1, idle: 0, recycled: 0 })
  })

  it('a passthrough recycler: plain sockets, and disconnect() is ioredis\'s own end() (no QUIT)', async () => {
    const passthrough = new SocketRecycler({ mode: 'passthrough' })
    try {
      const run = async (Connector?: ReturnType<typeof recycledConnector>): Promise<unknown[]> => {
        const r = client(Connector ? { Connector } : {}, false)
        const log = trace(r)
        await r.ping()
        r.disconnect()
        await ended(r)
        return [streamOf(r).bytesWritten, log]
      }
      const plain = await run()
      expect(await run(recycledConnector(passthrough))).toEqual(plain)
      expect(passthrough.stats()).toMatchObject({ mode: 'passthrough', connections: 1, recycled: 0 })
    } finally {
      await passthrough.close()
    }
  })

  it('rejects a recycler that is not one', () => {
    expect(() => recycledConnector({} as SocketRecycler)).toThrow(InvalidArgumentError)
    expect(() => recycledConnector('recycler' as unknown as SocketRecycler)).toThrow(/expected a SocketRecycler/)
    for (const bad of [{ quitTimeoutMs: -1 }, { quitTimeoutMs: '5' }, { quitTimout: 5 }]) {
      expect(() => recycledConnector(recycler, bad as never)).toThrow(expect.objectContaining({ code: 'ERR_FDRECYCLE_INVALID_OPTION' }))
    }
  })

  it('reports a closed recycler as a connection error', async () => {
    const closed = new SocketRecycler()
    await closed.close()
    const r = client({ Connector: recycledConnector(closed), retryStrategy: () => null })
    const log = trace(r)
    await ended(r)
    expect(log[0]).toMatch(/^error RecyclerClosedError ERR_FDRECYCLE_CLOSED/)
  })
})

/**
 * "The right goodbye" for disconnect(): ioredis ends the stream and waits up to disconnectTimeout
 * for 'close'. Redis closes only after our FIN or a QUIT. Each option, measured on the same
 * server in one run: how long the app waits for 'end', what stays in client TIME_WAIT, RSTs sent.
 */
describe('disconnect() goodbye options (measured)', () => {
  type Variant = { name: string; runs: number; finDelayMs?: number; connector?: (recycler: SocketRecycler) => ReturnType<typeof recycledConnector> }
  const bound = (Base: typeof RecycledConnector, recycler: SocketRecycler) =>
    class extends Base {
      constructor(options: ConnectorOptions) {
        super(options, recycler)
      }
    } as unknown as ReturnType<typeof recycledConnector>
  /** ioredis's own AbstractConnector#disconnect(): end(), destroy() after disconnectTimeout. */
  class EndOnly extends RecycledConnector {
    override disconnect(): void {
      this.connecting = false
      const stream = this.stream
      if (!stream) return
      const timeout = setTimeout(() => stream.destroy(), 2000)
      stream.on('close', () => clearTimeout(timeout))
      stream.end()
    }
  }
  /** Dissolve at once: AF_UNSPEC sends RST, the fd is reused. */
  class Reset extends RecycledConnector {
    override disconnect(): void {
      this.connecting = false
      ;(this.stream as RecycledSocket | undefined)?.resetAndDestroy()
    }
  }
  const variants: Variant[] = [
    { name: 'no connector (plain ioredis)', runs: 100 },
    { name: 'end(), FIN withheld (finDelayMs 1000)', runs: 3, connector: (r) => bound(EndOnly, r) },
    { name: 'end(), FIN at once (finDelayMs 0)', runs: 100, finDelayMs: 0, connector: (r) => bound(EndOnly, r) },
    { name: 'reset (resetAndDestroy)', runs: 100, connector: (r) => bound(Reset, r) },
    { name: 'QUIT goodbye (recycledConnector)', runs: 100, connector: (r) => recycledConnector(r) },
  ]

  // Compares goodbyes of the release protocol; with recycling off every variant is ioredis's own
  // end() on a plain socket (the passthrough connector is checked above), nothing left to compare.
  it.skipIf(!recyclingSupported)('QUIT goodbye: Redis closes first, no RST, no client TIME_WAIT, the app does not wait for a timer', async () => {
    // Warm-up (JIT, the server's first connections), not measured.
    const warm = new SocketRecycler()
    for (let i = 0; i < 20; i++) {
      for (const Connector of [undefined, recycledConnector(warm)]) {
        const r = new majors[0]!.Redis({ host, port, ...(Connector ? { Connector } : {}) })
        await r.ping()
        r.disconnect()
        await ended(r)
      }
    }
    await warm.close()
    const rows: Record<string, unknown>[] = []
    const results = new Map<string, { timeWait: number; resets: number; finFirst: number; peerFirst: number }>()
    for (const variant of variants) {
      const recycler = new SocketRecycler(variant.finDelayMs === undefined ? {} : { finDelayMs: variant.finDelayMs })
      const Connector = variant.connector?.(recycler)
      const before = timeWaitTuples([port])
      const latencies: number[] = []
      for (let i = 0; i < variant.runs; i++) {
        const r = new majors[0]!.Redis({ host, port, ...(Connector ? { Connector } : {}) })
        await r.ping()
        const t0 = performance.now()
        r.disconnect()
        await ended(r)
        latencies.push(performance.now() - t0)
        await released(recycler)
      }
      await released(recycler)
      const stats = recycler.stats()
      const timeWait = newEntries(before, timeWaitTuples([port])).length
      await recycler.close()
      results.set(variant.name, { timeWait, resets: stats.resetsSent, finFirst: stats.finSentFirst, peerFirst: stats.peerClosedFirst })
      rows.push({
        goodbye: variant.name,
        runs: variant.runs,
        'median ms': Number(median(latencies).toFixed(2)),
        'max ms': Number(Math.max(...latencies).toFixed(2)),
        'client TIME_WAIT': timeWait,
        'RST (resetsSent)': Connector ? stats.resetsSent : 0,
        'fds created': Connector ? stats.fdsCreated : variant.runs,
      })
    }
    console.table(rows)
    const chosen = results.get('QUIT goodbye (recycledConnector)')!
    expect(chosen).toEqual({ timeWait: 0, resets: 0, finFirst: 0, peerFirst: 100 })
    // The other options show what the measurement can see. (A new loopback connection may take
    // over a TIME_WAIT's port, net.ipv4.tcp_tw_reuse: counts of TIME_WAIT can fall short of runs.)
    expect(results.get('no connector (plain ioredis)')!.timeWait).toBeGreaterThan(50)
    expect(results.get('end(), FIN at once (finDelayMs 0)')!).toMatchObject({ finFirst: 100 })
    expect(results.get('end(), FIN at once (finDelayMs 0)')!.timeWait).toBeGreaterThan(50)
    expect(results.get('end(), FIN withheld (finDelayMs 1000)')!).toMatchObject({ finFirst: 3 })
    expect(results.get('end(), FIN withheld (finDelayMs 1000)')!.timeWait).toBeGreaterThan(0)
    expect(results.get('reset (resetAndDestroy)')!).toMatchObject({ timeWait: 0, resets: 100 })
  })
})
