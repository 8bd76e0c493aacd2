import https from 'node:https'
import type net from 'node:net'
import type tls from 'node:tls'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { SOL_SOCKET, SO_KEEPALIVE } from '../../core/src/ffi/libc.js'
import { getIntOption } from '../../core/src/ffi/syscalls.js'
import { RecycledHttpsAgent } from '@fdrecycle/http-adapter'
import { closedPort } from '../../../test/helpers/servers.js'
import { fdOf, isLinux } from '../../../test/helpers/system.js'
import {
  expectRecycled, fetch, openSockets, passthroughStats, recyclingSupported, runConcurrently, selfSignedCert, settled,
  socketsSince, timeWaitCount, trackConnections, until, upstream, writeChunked,
} from './helpers.js'

describe.runIf(isLinux)('RecycledHttpsAgent (TLS over recycled sockets)', () => {
  let cert: { key: Buffer; cert: Buffer }
  let recycler: SocketRecycler | undefined
  let agent: https.Agent | undefined
  beforeAll(() => {
    cert = selfSignedCert()
  })
  afterEach(async () => {
    agent?.destroy()
    await recycler?.close()
    // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
    if (recycler) await until(() => recycler!.stats().active === 0, 'the sockets to close')
    recycler = agent = undefined
  })

  it('serves 200 https requests to a Connection: close server from a handful of fds, with SNI and TLS session reuse', async () => {
    recycler = new SocketRecycler()
    agent = new RecycledHttpsAgent({ recycler, keepAlive: true, maxSockets: 4, ca: cert.cert })
    await using srv = await upstream((req, res) => {
      res.setHeader('connection', 'close')
      const n = Number(req.url!.slice(1))
      if (n % 10 === 0) writeChunked(res, 300_000, 'z', 7)
      else res.end(`secure ${n}`)
    }, cert)
    let resumed = 0
    await runConcurrently(200, 4, async (n) => {
      const r = await new Promise<{ body: string; reused: boolean; layer: string | undefined }>((resolve, reject) => {
        https.get(`https://localhost:${srv.port}/${n}`, { agent }, (res) => {
          let body = ''
          res.setEncoding('latin1')
          res.on('data', (d: string) => (body += d))
          const layer = (res.socket as unknown as { ssl: { _parent: object } | null }).ssl?._parent.constructor.name
          res.on('end', () => resolve({ body, reused: (res.socket as tls.TLSSocket).isSessionReused(), layer }))
        }).on('error', reject)
      })
      if (r.reused) resumed++
      // TLS over the recycled socket's own methods (a JS stream), never its TCP handle: TLS's end()
      // reaches the recycler (over the handle it would be libuv's shutdown, a FIN below JavaScript).
      if (recyclingSupported) expect(r.layer).toBe('JSStream')
      expect(r.body).toBe(n % 10 === 0 ? 'z'.repeat(300_000) : `secure ${n}`)
    })
    await settled(recycler)
    const stats = recycler.stats()
    expect(srv.accepted).toBe(200)
    expect(stats.connections).toBe(200)
    expect(srv.servernames).toEqual(Array(200).fill('localhost'))
    expect(resumed).toBeGreaterThan(100)
    expect(srv.resumed).toBe(resumed)
    if (recyclingSupported) {
      expect(stats.fdsCreated).toBeLessThanOrEqual(16) // 4x in flight (see agent.test.ts)
      expect(stats).toMatchObject({ fdsClosed: 0, resetsSent: 0, recycled: 200 })
      // The server closes first; TLS's close goes through the recycled socket's end(), withheld.
      expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    } else {
      expect(stats).toMatchObject(passthroughStats(200))
    }
  })

  it('an abandoned TLS response is drained; the next connection on the same fd reads only its own', async () => {
    recycler = new SocketRecycler({ maxSockets: 1, finDelayMs: 20 })
    agent = new RecycledHttpsAgent({ recycler, keepAlive: true, maxSockets: 1, ca: cert.cert })
    const big = 8 << 20
    await using srv = await upstream((req, res) => {
      if (req.url === '/big') {
        res.setHeader('content-length', big)
        writeChunked(res, big, 'A', 128)
      } else {
        res.end(Buffer.alloc(5000, 'B'))
      }
    }, cert)
    const track = trackConnections()
    try {
      await new Promise<void>((resolve, reject) => {
        const req = https.get(`https://localhost:${srv.port}/big`, { agent }, (res) => {
          let n = 0
          res.on('data', (chunk: Buffer) => {
            n += chunk.length
            if (n >= 1 << 20) {
              req.destroy()
              resolve()
            }
          })
        })
        req.on('error', (err) => {
          if (!req.destroyed) reject(err)
        })
      })
      const next = await fetch(`https://localhost:${srv.port}/small`, agent)
      expect(next.body.equals(Buffer.alloc(5000, 'B'))).toBe(true)
      if (recyclingSupported) {
        expect(track.connections).toHaveLength(2)
        expect(track.connections[1]!.inode).toBe(track.connections[0]!.inode)
      }
      expect(srv.accepted).toBe(2)
      agent.destroy()
      await settled(recycler)
      expectRecycled(recycler.stats(), { connections: 2, fdsCreated: 1, fdsClosed: 0 })
      if (recyclingSupported) expect(recycler.stats().discardedBytes).toBeGreaterThan(0)
    } finally {
      track.stop()
    }
  })

  it('keep-alive: a free TLS socket gets SO_KEEPALIVE on its TCP socket, as with a plain https.Agent', async () => {
    recycler = new SocketRecycler()
    agent = new RecycledHttpsAgent({ recycler, keepAlive: true, ca: cert.cert })
    await using srv = await upstream((_req, res) => res.end('kept'), cert)
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      https.get(`https://127.0.0.1:${srv.port}/`, { agent }, (res) => {
        const s = res.socket as tls.TLSSocket
        res.resume()
        res.on('end', () => resolve(s))
      }).on('error', reject)
    })
    await until(() => Object.values(agent!.freeSockets).flat().length === 1, 'the socket to be free')
    const transport = (socket as unknown as { _parent: net.Socket })._parent
    expect(transport).toBeInstanceOf(RecycledSocket)
    expect(getIntOption(fdOf(transport), SOL_SOCKET, SO_KEEPALIVE)).toBe(1)
  })

  it("the Agent's timeout covers the TCP connect as on a plain https.Agent ('timeout' on the request)", async () => {
    const before = openSockets()
    recycler = new SocketRecycler()
    // A lookup that never answers: the TCP connect never starts.
    const lookup = (() => {}) as never
    agent = new RecycledHttpsAgent({ recycler, timeout: 50, lookup } as https.AgentOptions)
    const outcome = await new Promise<string>((resolve) => {
      const req = https.get('https://stalled.invalid/', { agent })
      req.on('timeout', () => {
        req.destroy()
        resolve('timeout')
      })
      req.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`))
    })
    expect(outcome).toBe('timeout')
    agent.destroy()
    await recycler.close()
    expect(socketsSince(before)).toBe(0)
  })

  it('a refused connection fails the request with ECONNREFUSED and the fd is reused', async () => {
    recycler = new SocketRecycler()
    agent = new RecycledHttpsAgent({ recycler, ca: cert.cert })
    const port = await closedPort()
    // 127.0.0.1, not localhost: localhost may resolve to ::1 first, an fd of another family.
    await expect(fetch(`https://127.0.0.1:${port}/`, agent)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await settled(recycler)
    expectRecycled(recycler.stats(), { connections: 1, idle: 1 })
    await using srv = await upstream((_req, res) => res.end('up'), cert)
    expect((await fetch(`https://127.0.0.1:${srv.port}/`, agent)).body.toString()).toBe('up')
    agent.destroy()
    await until(() => recycler!.stats().active === 0, 'the socket released')
    expectRecycled(recycler.stats(), { fdsCreated: 1, connections: 2, fdsClosed: 0 })
  })
})
