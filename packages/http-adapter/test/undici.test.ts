import type tls from 'node:tls'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Agent, errors, request } from 'undici'
import { InvalidArgumentError, InvalidOptionError, SocketRecycler } from '@fdrecycle/core'
import { ConnectTimeoutError, undiciConnector } from '@fdrecycle/http-adapter'
import { closedPort } from '../../../test/helpers/servers.js'
import { isLinux } from '../../../test/helpers/system.js'
import {
  expectRecycled, openSockets, passthroughStats, recyclingSupported, runConcurrently, selfSignedCert, settled,
  socketsSince, timeWaitCount, trackConnections, until, upstream, writeChunked,
} from './helpers.js'

async function text(url: string, dispatcher: Agent): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const r = await request(url, { dispatcher })
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers }
}

describe.runIf(isLinux)('undiciConnector', () => {
  let recycler: SocketRecycler | undefined
  let dispatcher: Agent | undefined
  afterEach(async () => {
    await dispatcher?.destroy()
    await recycler?.close()
    // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
    if (recycler) await until(() => recycler!.stats().active === 0, 'the sockets to close')
    recycler = dispatcher = undefined
  })

  it('serves 600 requests to a Connection: close upstream from a handful of fds, bodies intact, no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    dispatcher = new Agent({ connect: undiciConnector(recycler), connections: 8 })
    await using srv = await upstream((req, res) => {
      res.setHeader('connection', 'close')
      const n = Number(req.url!.slice(1))
      if (n % 5 === 0) writeChunked(res, 100_000 + n, 'q', 9)
      else res.end(`undici ${n}`)
    })
    await runConcurrently(600, 8, async (n) => {
      const r = await text(`${srv.url}/${n}`, dispatcher!)
      expect(r.status).toBe(200)
      expect(r.body).toBe(n % 5 === 0 ? 'q'.repeat(100_000 + n) : `undici ${n}`)
    })
    await settled(recycler)
    const stats = recycler.stats()
    expect(srv.accepted).toBe(600)
    expect(stats.connections).toBe(600)
    if (recyclingSupported) {
      expect(stats.fdsCreated).toBeLessThanOrEqual(32) // 4x in flight (see agent.test.ts)
      expect(stats).toMatchObject({ fdsClosed: 0, recycled: 600, finSentFirst: 0, resetsSent: 0 })
      expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    } else {
      expect(stats).toMatchObject(passthroughStats(600))
    }
  })

  it('https: honours hostname, port and servername (SNI), reuses TLS sessions', async () => {
    const cert = selfSignedCert()
    recycler = new SocketRecycler()
    dispatcher = new Agent({ connect: undiciConnector(recycler, { ca: cert.cert }), connections: 2 })
    await using srv = await upstream((req, res) => {
      res.setHeader('connection', 'close')
      res.end(`tls ${req.url}`)
    }, cert)
    for (let i = 0; i < 20; i++) expect((await text(`https://localhost:${srv.port}/${i}`, dispatcher)).body).toBe(`tls /${i}`)
    expect(srv.servernames).toEqual(Array(20).fill('localhost'))
    expect(srv.resumed).toBeGreaterThanOrEqual(15)
    // an IP address sends no SNI, as with undici's own connector
    expect((await text(`https://127.0.0.1:${srv.port}/ip`, dispatcher)).body).toBe('tls /ip')
    expect(srv.servernames).toHaveLength(21)
    expect(srv.servernames[20]).toBeUndefined()
    await settled(recycler)
    expect(recycler.stats().connections).toBe(21)
    if (recyclingSupported) expect(recycler.stats().fdsCreated).toBeLessThanOrEqual(8)
    else expect(recycler.stats()).toMatchObject(passthroughStats(21))
  })

  it("https: TLS runs over the recycled socket's own methods (a JS stream), never its TCP handle, so that its end() reaches the recycler", async () => {
    const cert = selfSignedCert()
    recycler = new SocketRecycler()
    const connect = undiciConnector(recycler, { ca: cert.cert })
    await using srv = await upstream((_req, res) => res.end('ok'), cert)
    for (const hostname of ['localhost', '127.0.0.1']) {
      const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        connect({ hostname, host: hostname, protocol: 'https:', port: String(srv.port), servername: null, localAddress: null, httpSocket: undefined } as never,
          (err, s) => (err ? reject(err) : resolve(s as tls.TLSSocket)))
      })
      // Over the handle (TLSWrap in C++), TLS's end() would be libuv's shutdown: a FIN below JavaScript.
      expect((socket as unknown as { ssl: { _parent: object } }).ssl._parent.constructor.name).toBe('JSStream')
      socket.destroy()
    }
    await settled(recycler)
  })

  it('keep-alive: an idle connection undici lets go of is recycled for the next one', async () => {
    recycler = new SocketRecycler({ finDelayMs: 20 })
    dispatcher = new Agent({ connect: undiciConnector(recycler), connections: 1, keepAliveTimeout: 100, keepAliveTimeoutThreshold: 0 })
    await using srv = await upstream((req, res) => res.end(`ka ${req.url}`))
    // no `Keep-Alive: timeout=5` hint, which undici would follow instead of its keepAliveTimeout
    srv.server.keepAliveTimeout = 0
    const track = trackConnections()
    try {
      for (let i = 0; i < 5; i++) expect((await text(`${srv.url}/${i}`, dispatcher)).body).toBe(`ka /${i}`)
      expect(srv.accepted).toBe(1)
      await settled(recycler) // undici drops the idle socket after keepAliveTimeout
      expectRecycled(recycler.stats(), { connections: 1, idle: 1 })
      expect((await text(`${srv.url}/again`, dispatcher)).body).toBe('ka /again')
      expect(srv.accepted).toBe(2)
      if (recyclingSupported) {
        expect(track.connections.map((c) => c.inode)).toEqual([track.connections[0]!.inode, track.connections[0]!.inode])
      }
    } finally {
      track.stop()
    }
  })

  it('an abandoned body is reset as a plain close would, never read by the next request on the same fd', async () => {
    recycler = new SocketRecycler({ maxSockets: 1, finDelayMs: 20 })
    dispatcher = new Agent({ connect: undiciConnector(recycler), connections: 1 })
    const big = 16 << 20
    await using srv = await upstream((req, res) => {
      if (req.url === '/big') {
        res.setHeader('content-length', big)
        writeChunked(res, big, 'A', 256)
      } else {
        res.end(Buffer.alloc(777, 'B'))
      }
    })
    const track = trackConnections()
    try {
      const r = await request(`${srv.url}/big`, { dispatcher })
      let n = 0
      for await (const chunk of r.body) {
        n += (chunk as Buffer).length
        if (n >= 1 << 20) break // leaves the loop: the body stream is destroyed half way
      }
      expect(n).toBeLessThan(big)
      const next = await text(`${srv.url}/small`, dispatcher)
      expect(next.body).toBe('B'.repeat(777))
      if (recyclingSupported) {
        expect(track.connections).toHaveLength(2)
        expect(track.connections[1]!.inode).toBe(track.connections[0]!.inode)
      }
      expect(srv.accepted).toBe(2)
      await dispatcher.destroy()
      await settled(recycler)
      expectRecycled(recycler.stats(), { connections: 2, fdsCreated: 1, fdsClosed: 0 })
      if (recyclingSupported) expect(recycler.stats().resetsSent).toBeGreaterThan(0) // unread bytes at destroy(): an RST, as net's close
    } finally {
      track.stop()
    }
  })

  it("connect timeout: undici's ConnectTimeoutError, nothing leaked", async () => {
    const before = openSockets()
    recycler = new SocketRecycler()
    const lookup = (() => {}) as never // never answers
    dispatcher = new Agent({ connect: undiciConnector(recycler, { timeout: 50, lookup }) })
    const err = await request('http://stalled.invalid:81/', { dispatcher }).then(() => null, (e: unknown) => e)
    // undici 6.22+ and 7.16+ recognise errors by brand symbols; earlier ones only by class.
    if (Symbol.for('undici.error.UND_ERR_CONNECT_TIMEOUT') in new errors.ConnectTimeoutError()) expect(err).toBeInstanceOf(errors.ConnectTimeoutError)
    expect(err).toBeInstanceOf(ConnectTimeoutError)
    expect(err).toMatchObject({ code: 'UND_ERR_CONNECT_TIMEOUT' })
    expect((err as Error).message).toMatch(/stalled\.invalid:81, timeout: 50ms/)
    await dispatcher.destroy()
    await recycler.close()
    expect(socketsSince(before)).toBe(0)
  })

  it('a refused connection is an ECONNREFUSED for undici; the fd goes back to the pool', async () => {
    recycler = new SocketRecycler()
    dispatcher = new Agent({ connect: undiciConnector(recycler) })
    const port = await closedPort()
    await expect(request(`http://127.0.0.1:${port}/`, { dispatcher })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await settled(recycler)
    expectRecycled(recycler.stats(), { connections: 1, fdsCreated: 1, fdsClosed: 0, idle: 1 })
  })

  it('bad input: typed errors naming the option, nothing leaked', async () => {
    const before = openSockets()
    recycler = new SocketRecycler()
    expect(() => undiciConnector({} as SocketRecycler)).toThrow(InvalidOptionError)
    expect(() => undiciConnector(recycler, { timeout: -1 })).toThrow(/timeout/)
    expect(() => undiciConnector(recycler, { maxCachedSessions: 1.5 })).toThrow(InvalidOptionError)
    expect(() => undiciConnector(recycler, { keepAlive: 'yes' as unknown as boolean })).toThrow(/keepAlive/)
    expect(() => undiciConnector(recycler, 'fast' as never)).toThrow(InvalidArgumentError)
    await recycler.close()
    expect(socketsSince(before)).toBe(0)
  })
})
