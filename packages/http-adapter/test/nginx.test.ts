// End to end against a server no one here wrote: Debian's nginx (test/setup/nginx.ts), every
// response `Connection: close` (keepalive_requests 1) except on the `keepalive` port.
import http from 'node:http'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { Agent, request } from 'undici'
import { SocketRecycler } from '@fdrecycle/core'
import { RecycledAgent, undiciConnector } from '@fdrecycle/http-adapter'
import { isLinux } from '../../../test/helpers/system.js'
import { sha256 } from './fixtures.js'
import { expectRecycled, fetch, passthroughStats, recyclingSupported, runConcurrently, settled, timeWaitCount, timeWaitSnapshot, trackConnections, until } from './helpers.js'

const nginx = inject('nginx')
const origin = (port: number) => `http://${nginx.host}:${port}`

/** The file a request number asks for: mostly small, some chunked, a few of 8 MiB. */
function pick(n: number) {
  if (n % 100 === 0) return nginx.large
  if (n % 20 === 0) return nginx.chunked
  return n % 2 === 0 ? nginx.small : nginx.hello
}

describe.runIf(isLinux)(`nginx ${nginx.version} upstream`, () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
    if (recycler) await until(() => recycler!.stats().active === 0, 'the sockets to close')
    recycler = undefined
  })

  it('node:http: 2000 requests to nginx closing every connection, a handful of fds, no client TIME_WAIT, bodies intact', async () => {
    recycler = new SocketRecycler()
    const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 16 })
    const port = nginx.ports.direct
    const before = timeWaitSnapshot(port, 'client')
    const seen = { chunked: 0, large: 0 }
    await runConcurrently(2000, 16, async (n) => {
      const file = pick(n)
      const r = await fetch(`${origin(port)}${file.path}`, agent)
      expect(r.status).toBe(200)
      expect(r.headers.connection).toBe('close')
      expect(r.body.length).toBe(file.size)
      expect(sha256(r.body)).toBe(file.sha256)
      if (file === nginx.chunked) {
        expect(r.headers['transfer-encoding']).toBe('chunked')
        seen.chunked++
      }
      if (file === nginx.large) seen.large++
    })
    agent.destroy()
    await settled(recycler)
    const stats = recycler.stats()
    expect(seen).toEqual({ chunked: 80, large: 20 })
    expect(stats.connections).toBe(2000)
    if (recyclingSupported) {
      // 16 in flight, plus fds still waiting for nginx's FIN or cooling in the pool's quarantine
      expect(stats.fdsCreated).toBeLessThanOrEqual(64)
      expect(stats).toMatchObject({ peerClosedFirst: 2000, finSentFirst: 0, resetsSent: 0, fdsClosed: 0, drainTimeouts: 0 })
      expect(timeWaitCount(port, 'client', null, before)).toBe(0)
    } else {
      expect(stats).toMatchObject(passthroughStats(2000))
    }
  })

  it('undici: 1000 requests to nginx, a handful of fds, no client TIME_WAIT, bodies intact', async () => {
    recycler = new SocketRecycler()
    // This test's own client ports: an earlier server on this port number (a port-0 pick) can have
    // left TIME_WAIT entries towards it that are still listed for 60 s.
    const connector = undiciConnector(recycler)
    const clientPorts = new Set<number | undefined>()
    const connect: typeof connector = (opts, callback) =>
      connector(opts, (err, socket) => {
        if (socket) clientPorts.add((socket as unknown as { localPort?: number }).localPort)
        callback(err as Error, socket as never)
      })
    const dispatcher = new Agent({ connect, connections: 16 })
    const port = nginx.ports.undici
    try {
      await runConcurrently(1000, 16, async (n) => {
        const file = pick(n)
        const r = await request(`${origin(port)}${file.path}`, { dispatcher })
        const body = Buffer.from(await r.body.arrayBuffer())
        expect(r.statusCode).toBe(200)
        expect(body.length).toBe(file.size)
        expect(sha256(body)).toBe(file.sha256)
      })
    } finally {
      await dispatcher.destroy()
    }
    await settled(recycler)
    const stats = recycler.stats()
    expect(stats.connections).toBe(1000)
    if (recyclingSupported) {
      expect(stats.fdsCreated).toBeLessThanOrEqual(64)
      expect(stats).toMatchObject({ finSentFirst: 0, resetsSent: 0, fdsClosed: 0 })
      expect(clientPorts.size).toBeGreaterThan(0)
      expect(timeWaitCount(port, 'client', clientPorts)).toBe(0)
    } else {
      expect(stats).toMatchObject(passthroughStats(1000))
    }
  })

  it('the same load with plain sockets (passthrough) opens one fd per request', async () => {
    recycler = new SocketRecycler({ mode: 'passthrough' })
    const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 16 })
    await runConcurrently(500, 16, async (n) => {
      const file = n % 2 === 0 ? nginx.small : nginx.hello
      const r = await fetch(`${origin(nginx.ports.plain)}${file.path}`, agent)
      expect(r.body.length).toBe(file.size)
    })
    agent.destroy()
    await until(() => recycler!.stats().active === 0, 'the plain sockets to close')
    expect(recycler.stats()).toMatchObject({ mode: 'passthrough', connections: 500, fdsCreated: 500, fdsClosed: 500 })
  })

  it('a response abandoned half way through an 8 MiB file: the next request on the same fd gets exactly its own', async () => {
    recycler = new SocketRecycler({ maxSockets: 1 })
    const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 1 })
    const port = nginx.ports.abort
    const track = trackConnections()
    try {
      for (let round = 0; round < 3; round++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.get(`${origin(port)}${nginx.large.path}`, { agent }, (res) => {
            let n = 0
            res.on('data', (chunk: Buffer) => {
              n += chunk.length
              if (n >= nginx.large.size / 2) {
                req.destroy()
                resolve()
              }
            })
          })
          req.on('error', (err) => {
            if (!req.destroyed) reject(err)
          })
        })
        const r = await fetch(`${origin(port)}${nginx.small.path}`, agent)
        expect(r.status).toBe(200)
        expect(r.body.length).toBe(nginx.small.size)
        expect(sha256(r.body)).toBe(nginx.small.sha256)
      }
      agent.destroy()
      await settled(recycler)
      if (recyclingSupported) {
        expect(new Set(track.connections.map((c) => c.inode)).size).toBe(1)
        expect(track.connections).toHaveLength(6)
        expect(recycler.stats().resetsSent).toBeGreaterThan(0) // unread bytes at destroy(): an RST, as net's close
      }
      expectRecycled(recycler.stats(), { fdsCreated: 1, fdsClosed: 0, connections: 6 })
    } finally {
      track.stop()
      agent.destroy()
    }
  })

  it('keep-alive nginx: the Agent reuses its socket, and when it drops it idle the fd is recycled', async () => {
    recycler = new SocketRecycler({ finDelayMs: 50 })
    const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 1, timeout: 200 })
    const port = nginx.ports.keepalive
    const track = trackConnections()
    try {
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`${origin(port)}${nginx.hello.path}`, agent)
        expect(r.headers.connection).toBe('keep-alive')
      }
      expect(recycler.stats().connections).toBe(1)
      // nginx keeps it open (keepalive_timeout 60s): the Agent's timeout drops it, our FIN goes
      // after finDelayMs, nginx closes, the fd goes back to the pool.
      await settled(recycler)
      expectRecycled(recycler.stats(), { connections: 1, idle: 1 })
      await fetch(`${origin(port)}${nginx.hello.path}`, agent)
      if (recyclingSupported) {
        expect(track.connections).toHaveLength(2)
        expect(track.connections[1]!.inode).toBe(track.connections[0]!.inode)
      }
      expectRecycled(recycler.stats(), { fdsCreated: 1, connections: 2, finSentFirst: 1, active: 1 })
    } finally {
      track.stop()
      agent.destroy()
    }
  })
})
