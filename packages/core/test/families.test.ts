import dns from 'node:dns'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { closedPort, greetAndClose, tcpServer } from '../../../test/helpers/servers.js'
import { fdOf, isLinux, socketInode } from '../../../test/helpers/system.js'
import { exchange, settle } from './helpers.js'

/** A resolver that answers `localhost` with both loopback addresses, IPv6 first. */
function bothFamilies(hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void): void {
  const all: dns.LookupAddress[] = [
    { address: '::1', family: 6 },
    { address: '127.0.0.1', family: 4 },
  ]
  if (options.all) callback(null, all)
  else callback(null, all[0]!.address, all[0]!.family)
}

describe.runIf(isLinux)('address families', () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    recycler = undefined
  })

  it('IPv6: a ::1 server is reached through the IPv6 pool, one fd for many connections', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(greetAndClose, '::1')
    const inodes = new Set<string>()
    for (let i = 0; i < 10; i++) {
      const socket = recycler.createConnection({ host: '::1', port: srv.port })
      socket.on('connect', () => inodes.add(socketInode(fdOf(socket))))
      const r = await exchange(socket)
      expect(r.data).toBe(`hello ${r.localPort}\n`)
      expect(socket.remoteFamily ?? 'IPv6').toBe('IPv6')
      await settle()
    }
    expect(inodes.size).toBe(1)
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, connections: 10, reusedConnections: 9 })
  })

  it('Happy Eyeballs cannot bypass the pool: ::1 refused, 127.0.0.1 answers, both attempts on pooled fds', async () => {
    recycler = new SocketRecycler()
    // Nothing listens on ::1 at this port; 127.0.0.1 does.
    await using srv = await tcpServer(greetAndClose, '127.0.0.1')
    const attempts: string[] = []
    const failed: string[] = []
    for (let i = 0; i < 5; i++) {
      const socket = recycler.createConnection({ host: 'localhost', port: srv.port, lookup: bothFamilies as typeof dns.lookup })
      socket.on('connectionAttempt', (ip: string) => attempts.push(ip))
      socket.on('connectionAttemptFailed', (ip: string) => failed.push(ip))
      const r = await exchange(socket)
      expect(r.error).toBeNull()
      expect(r.data).toBe(`hello ${r.localPort}\n`)
      expect((socket as unknown as { autoSelectFamilyAttemptedAddresses: string[] }).autoSelectFamilyAttemptedAddresses).toEqual([
        `::1:${srv.port}`,
        `127.0.0.1:${srv.port}`,
      ])
      await settle()
    }
    expect(attempts).toEqual(Array.from({ length: 5 }, () => ['::1', '127.0.0.1']).flat())
    expect(failed).toEqual(Array.from({ length: 5 }, () => '::1'))
    // one fd per family, every attempt on a pooled fd, each reused
    expect(recycler.stats()).toMatchObject({ fdsCreated: 2, connections: 10, reusedConnections: 8, idle: 2, active: 0 })
  })

  it('all addresses refused: an AggregateError with the first code, as net gives, and the fds go back', async () => {
    recycler = new SocketRecycler()
    const port = await closedPort()
    const socket = recycler.createConnection({ host: 'localhost', port, lookup: bothFamilies as typeof dns.lookup })
    const r = await exchange(socket)
    expect(r.error).toBeInstanceOf(AggregateError)
    expect((r.error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
    expect((r.error as AggregateError).errors).toHaveLength(2)
    await settle()
    expect(recycler.stats()).toMatchObject({ fdsCreated: 2, idle: 2, active: 0, fdsClosed: 0 })
  })

  it('autoSelectFamily: false and family: 4 pick the IPv4 pool only', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(greetAndClose, '127.0.0.1')
    const socket = recycler.createConnection({ host: 'localhost', port: srv.port, family: 4 })
    const r = await exchange(socket)
    expect(r.data).toBe(`hello ${r.localPort}\n`)
    await settle()
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, connections: 1 })
  })

  it('a lookup error reaches the socket as it would with net', async () => {
    recycler = new SocketRecycler()
    const failing = ((_h: string, _o: unknown, cb: (err: Error) => void) =>
      setImmediate(() => cb(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' })))) as unknown as typeof dns.lookup
    const socket = recycler.createConnection({ host: 'nowhere.invalid', port: 1, lookup: failing })
    const lookups: unknown[] = []
    socket.on('lookup', (err: Error | null) => lookups.push(err))
    const r = await exchange(socket)
    expect((r.error as NodeJS.ErrnoException).code).toBe('ENOTFOUND')
    expect(lookups).toHaveLength(1)
    // As net's, the socket had a handle from connect() on, with no kernel socket yet (net makes
    // one on connect); it went back to the pool unused.
    await settle()
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, fdsClosed: 0, idle: 1, active: 0, draining: 0 })
  })
})
