// ioredis 5 and 6 against a TLS-only redis-server: `tls` and `rediss://` run over recycled sockets,
// with the same errors and timeouts as without the connector.
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { recycledConnector } from '@fdrecycle/redis-adapter'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { openSockets } from '../../../test/helpers/system.js'
import {
  ended, expectRecycled, fdsSettle, majors, median, newEntries, passthroughStats, type RedisClient, recyclingSupported, released, settle, streamOf,
  timeWaitTuples, trace,
} from './helpers.js'

const servers = inject('redis')
const host = servers.host
const port = servers.tls.port
const ca = servers.tls.ca

/** Waits until no released fd is cooling: the next connection then takes it. A bounded poll: no event tells it. */
async function lendable(recycler: SocketRecycler, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (recycler.stats().cooling > 0) {
    if (Date.now() > deadline) throw new Error(`fds still cooling after ${timeoutMs} ms: ${JSON.stringify(recycler.stats())}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

describe.each(majors)('$name, TLS', ({ Redis }) => {
  let recycler: SocketRecycler
  let baselineFds: Set<string>
  const clients: RedisClient[] = []
  const track = (c: RedisClient): RedisClient => {
    clients.push(c)
    return c
  }
  const client = (options: Record<string, unknown> = {}, recycled = true): RedisClient =>
    track(new Redis({ host, port, tls: { ca }, ...(recycled ? { Connector: recycledConnector(recycler) } : {}), ...options }))

  beforeEach(() => {
    baselineFds = openSockets()
    recycler = new SocketRecycler()
  })

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await recycler.close()
    // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
    await released(recycler)
    expect(recycler.stats().fdsCreated).toBe(recycler.stats().fdsClosed)
    expect(await fdsSettle(baselineFds)).toBe(0)
  })

  it('runs over TLS on a recycled socket (tls option and rediss://)', async () => {
    const r = client()
    expect(await r.set('tls:key', 'über')).toBe('OK')
    expect(await r.get('tls:key')).toBe('über')
    const stream = streamOf(r)
    expect(stream).toBeInstanceOf(tls.TLSSocket)
    expect((stream as tls.TLSSocket).authorized).toBe(true)
    await r.quit()
    await ended(r)
    await released(recycler)
    const url = track(new Redis(`rediss://${host}:${port}`, { tls: { ca }, Connector: recycledConnector(recycler) }))
    expect(await url.get('tls:key')).toBe('über')
    await url.quit()
    await ended(url)
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 2, fdsCreated: 1 })
  })

  it('quit() and disconnect(): Redis closes first, no RST, no client TIME_WAIT, the fd is reused', async () => {
    // Who closes first is the point: a generous finDelayMs keeps a loaded machine from deciding it.
    const patient = new SocketRecycler({ finDelayMs: 5000 })
    try {
      const before = timeWaitTuples([port])
      const errors: Error[] = []
      for (let i = 0; i < 20; i++) {
        // quitTimeoutMs as patient: disconnect()'s QUIT answer must not race a 250 ms timer either
        const r = track(new Redis({ host, port, tls: { ca }, Connector: recycledConnector(patient, { quitTimeoutMs: 5000 }) }))
        r.on('error', (err: Error) => errors.push(err))
        expect(await r.incr('tls:n')).toBeGreaterThan(0)
        if (i % 2 === 0) await r.quit()
        else r.disconnect()
        await ended(r)
        await released(patient)
        // disconnect() lets go of the TLS socket at Redis's EOF, a few ticks after ioredis's 'end':
        // its fd may still be cooling (lendable after the next poll phase) when the next client starts.
        await lendable(patient)
      }
      expect(errors).toEqual([])
      // Our FIN never went first (peerClosedFirst undercounts here: see the report).
      expectRecycled(patient.stats(), { connections: 20, fdsCreated: 1, recycled: 20, finSentFirst: 0, resetsSent: 0 })
      if (recyclingSupported) expect(newEntries(before, timeWaitTuples([port]))).toEqual([])
    } finally {
      await patient.close()
    }
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

  it('a certificate the client does not trust: the same error and retries as without the connector', async () => {
    const run = async (recycled: boolean): Promise<string[]> => {
      const r = client({ tls: {}, retryStrategy: (times: number) => (times <= 1 ? 5 : null) }, recycled)
      const log = trace(r)
      await ended(r)
      return log
    }
    const plain = await run(false)
    expect(plain.some((l) => l.startsWith('error') && /certificate/i.test(l))).toBe(true)
    expect(await run(true)).toEqual(plain)
    await settle()
    // The handshake failed after TCP connected: those fds were recycled too.
    expect(recycler.stats().connections).toBe(2)
  })

  it('connectTimeout during a TLS handshake that never completes: the same as without the connector', async () => {
    // Accepts TCP and says nothing: the TLS client waits for a ServerHello that never comes.
    const accepted: net.Socket[] = []
    const silent = net.createServer((socket) => {
      accepted.push(socket)
      socket.on('error', () => {})
    })
    silent.listen(0, host)
    await once(silent, 'listening')
    const silentPort = (silent.address() as net.AddressInfo).port
    try {
      const run = async (recycled: boolean): Promise<string[]> => {
        const r = client({ port: silentPort, connectTimeout: 100, retryStrategy: (times: number) => (times <= 1 ? 5 : null) }, recycled)
        const log = trace(r)
        await ended(r)
        return log
      }
      const plain = await run(false)
      expect(plain).toContain('error Error ETIMEDOUT connect connect ETIMEDOUT')
      expect(await run(true)).toEqual(plain)
    } finally {
      for (const socket of accepted) socket.destroy()
      silent.close()
    }
  })

  it('the recycled socket under TLS is one of the recycler\'s', async () => {
    const seen: unknown[] = []
    const r = client()
    await r.ping()
    // TLS over the recycled socket's own methods (tlsConnectOverSocket): Node wraps it in a JS stream (its _parent).
    const parent = (streamOf(r) as unknown as { _parent?: unknown })._parent
    seen.push(parent instanceof RecycledSocket, (parent as RecycledSocket).recycled)
    await r.quit()
    expect(seen).toEqual([true, recyclingSupported])
  })
})

describe('TLS goodbye latency (measured, ioredis 6)', () => {
  it('prints quit() and disconnect() latency with and without the connector', async () => {
    const rows: Record<string, unknown>[] = []
    const recycler = new SocketRecycler()
    const { Redis } = majors[0]!
    for (const recycled of [false, true]) {
      for (const goodbye of ['quit', 'disconnect'] as const) {
        const before = timeWaitTuples([port])
        const latencies: number[] = []
        for (let i = 0; i < 30; i++) {
          const r = new Redis({ host, port, tls: { ca }, ...(recycled ? { Connector: recycledConnector(recycler) } : {}) })
          await r.ping()
          const t0 = performance.now()
          if (goodbye === 'quit') await r.quit()
          else r.disconnect()
          await ended(r)
          latencies.push(performance.now() - t0)
          await settle()
        }
        rows.push({
          connector: recycled,
          goodbye,
          'median ms': Number(median(latencies).toFixed(2)),
          'client TIME_WAIT': newEntries(before, timeWaitTuples([port])).length,
        })
      }
    }
    console.table(rows)
    await released(recycler)
    const stats = recycler.stats()
    await recycler.close()
    expect(stats.resetsSent).toBe(0)
    if (recyclingSupported) {
      expect(rows.filter((r) => r.connector === true).map((r) => r['client TIME_WAIT'])).toEqual([0, 0])
    } else {
      // plain sockets through the connector: what plain ioredis leaves, and one fd per connection
      expect(stats).toMatchObject(passthroughStats(60))
    }
  })
})
