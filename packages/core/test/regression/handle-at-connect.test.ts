import dns from 'node:dns'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { selfSignedCert } from '../../../../test/helpers/certs.js'
import { greetAndClose, lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { exchange, settle } from '../helpers.js'

// What broke: a recycled socket had no `_handle` after connect() until an fd was lent (after the
// lookup for a host name, after the pool's answer for an IP with no idle fd); net makes its handle
// in connect(). Node's own tests met it: `bufferSize` was undefined while connecting
// (test-net-buffersize), `client._handle.setKeepAlive = ...` right after connect() threw
// (test-net-connect-keepalive, -nodelay), and `tls.connect({ socket })` on a socket still
// connecting took Node's JS-stream path (test-tls-connect-given-socket).

type Handle = { fd: number; setKeepAlive: (...a: unknown[]) => number; setNoDelay: (...a: unknown[]) => number }
const handleOf = (s: net.Socket): Handle | null => (s as unknown as { _handle: Handle | null })._handle

describe.runIf(isLinux)('regression: the socket has its handle when connect() returns, as with net', () => {
  for (const [what, host] of [['a host name', 'localhost'], ['an IP literal, empty pool', '127.0.0.1']] as const) {
    it(`${what}: _handle and bufferSize right after connect(), then the same handle connected`, async () => {
      await using srv = await tcpServer(lineEcho)
      const recycler = new SocketRecycler()
      for (const make of [(o: net.NetConnectOpts) => net.connect(o), (o: net.NetConnectOpts) => recycler.createConnection(o)]) {
        const socket = make({ host, port: srv.port, family: 4 })
        const handle = handleOf(socket)
        expect(handle).not.toBeNull()
        for (let i = 1; i < 4; i++) {
          socket.write('a')
          expect(socket.bufferSize).toBe(i)
        }
        socket.end('\n')
        await once(socket, 'connect')
        expect(handleOf(socket)).toBe(handle)
        socket.resume()
        await once(socket, 'close')
      }
      await recycler.close()
    })
  }

  it('a method a tenant replaced on its handle (as Node\'s tests do) is called for it, and is gone for the next tenant', async () => {
    await using srv = await tcpServer(greetAndClose)
    const recycler = new SocketRecycler()
    const calls: unknown[][] = []
    const first = recycler.createConnection({ host: 'localhost', port: srv.port, keepAlive: true, keepAliveInitialDelay: 2000 })
    const handle = handleOf(first)!
    handle.setKeepAlive = (...args: unknown[]) => {
      calls.push(args.slice(0, 2)) // (enable, delay); Node 24+ passes interval and count after them
      return 0
    }
    await exchange(first)
    expect(calls).toEqual([[true, 2]])
    await settle()
    const second = recycler.createConnection({ host: 'localhost', port: srv.port, keepAlive: true, keepAliveInitialDelay: 3000 })
    expect(handleOf(second)).toBe(handle) // the same pooled handle
    expect(Object.hasOwn(handle, 'setKeepAlive')).toBe(false)
    const r = await exchange(second)
    expect(r.data).toBe(`hello ${r.localPort}\n`)
    expect(calls).toHaveLength(1)
    await recycler.close()
  })

  it('destroyed during the lookup: the fd taken at connect() goes back unused, close(false), nothing leaked', async () => {
    await using srv = await tcpServer(greetAndClose)
    const recycler = new SocketRecycler()
    const warm = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }))
    expect(warm.error).toBeNull()
    await settle()
    let answer: (() => void) | undefined
    const slow = ((h: string, o: dns.LookupOptions, cb: (...a: unknown[]) => void) => {
      answer = () => dns.lookup(h, o, cb as never)
    }) as unknown as typeof dns.lookup
    const socket = recycler.createConnection({ host: 'localhost', port: srv.port, lookup: slow, autoSelectFamily: false })
    expect(handleOf(socket)?.fd).toBe(warm.fd) // the warm fd, taken before the lookup
    const events: string[] = []
    socket.on('connect', () => events.push('connect'))
    socket.on('error', (e) => events.push(`error ${e.message}`))
    socket.destroy()
    const [hadError] = await once(socket, 'close')
    expect(hadError).toBe(false)
    answer!() // the lookup answers after the destroy: nothing happens
    await settle()
    expect(events).toEqual([])
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, fdsClosed: 0, idle: 1, active: 0, draining: 0, resetsSent: 0 })
    const again = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }))
    expect(again.fd).toBe(warm.fd)
    expect(again.data).toBe(`hello ${again.localPort}\n`)
    await recycler.close()
  })

  it('the lookup answers with the other family: the fd goes back, one of that family connects, and the next connect takes that family at once', async () => {
    await using srv4 = await tcpServer(greetAndClose, '127.0.0.1')
    const srv6 = await tcpServer(greetAndClose, '::1').catch(() => null)
    if (!srv6) return // no IPv6 loopback here
    await using _srv6 = srv6
    const recycler = new SocketRecycler()
    const warm4 = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv4.port }))
    expect(warm4.error).toBeNull()
    await settle()
    const toV6 = ((_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => setImmediate(() => cb(null, '::1', 6))) as unknown as typeof dns.lookup
    const host = 'v6-only.test'
    const first = recycler.createConnection({ host, port: srv6.port, lookup: toV6, autoSelectFamily: false })
    expect(handleOf(first)?.fd).toBe(warm4.fd) // IPv4 by default, before the lookup
    const r1 = await exchange(first)
    expect(r1.error).toBeNull()
    expect(r1.data).toBe(`hello ${r1.localPort}\n`)
    expect(r1.fd).not.toBe(warm4.fd)
    await settle()
    const second = recycler.createConnection({ host, port: srv6.port, lookup: toV6, autoSelectFamily: false })
    const held = handleOf(second)
    expect(held?.fd).toBe(r1.fd) // the IPv6 fd: the host's family was remembered
    const r2 = await exchange(second)
    expect(r2.data).toBe(`hello ${r2.localPort}\n`)
    expect(r2.fd).toBe(r1.fd)
    await settle()
    expect(recycler.stats()).toMatchObject({ fdsCreated: 2, fdsClosed: 0, idle: 2, active: 0, resetsSent: 0 })
    await recycler.close()
  })

  it('tls.connect({ socket }) on a socket still resolving its host wraps its handle: the session runs and ends cleanly', async () => {
    const cert = selfSignedCert()
    const server = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
      s.on('error', () => {})
      s.end('Hello')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as net.AddressInfo).port
    const recycler = new SocketRecycler()
    try {
      for (let i = 0; i < 3; i++) {
        const raw = recycler.createConnection({ host: 'localhost', port, family: 4 })
        expect(handleOf(raw)).not.toBeNull()
        const secure = tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost' })
        const errors: Error[] = []
        secure.on('error', (e) => errors.push(e))
        let data = ''
        secure.setEncoding('utf8')
        secure.on('data', (d: string) => (data += d))
        await once(secure, 'end')
        secure.end()
        await once(raw, 'close')
        expect({ data, errors }).toEqual({ data: 'Hello', errors: [] })
        await settle()
      }
      expect(recycler.stats()).toMatchObject({ resetsSent: 0, active: 0 })
    } finally {
      await recycler.close()
      server.close()
    }
  })

  it('with maxSockets set and no idle fd, the handle comes with the pool\'s answer (documented)', async () => {
    await using srv = await tcpServer(greetAndClose)
    const recycler = new SocketRecycler({ maxSockets: 4 })
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    expect(handleOf(socket)).toBeNull()
    const r = await exchange(socket)
    expect(r.data).toBe(`hello ${r.localPort}\n`)
    await recycler.close()
  })
})
