import { execFileSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { InvalidArgumentError, RecycledSocket, SocketRecycler, defaultRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import {
  clientTimeWaits, expectRecycled, fdOf, openSockets, recyclingSupported, released, servers, serverTimeWaits,
  socketInode, socketsSince, tcpConfig, tcpSocketOf, tupleOf, until,
} from './helpers.js'

const { plain, tls } = servers()
const ipv6 = plain.ipv6

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

async function roundTrip(config: pg.ClientConfig): Promise<{ tuple: string; inode: string; recycled: boolean; value: number }> {
  const client = new pg.Client(config)
  await client.connect()
  const socket = tcpSocketOf(client)
  const inode = socketInode(fdOf(socket))
  const tuple = tupleOf(client)
  const recycled = (socket as RecycledSocket).recycled
  const r = await client.query<{ v: number }>('SELECT $1::int * 2 AS v', [21])
  await client.end()
  return { tuple, inode, recycled, value: r.rows[0]!.v }
}

describe('pg.Client over recycled sockets', () => {
  it('host/port over IPv4: Terminate, the server closes first, the fd is parked with no RST and no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const client = new pg.Client({ ...tcpConfig(plain), stream: pgStream(recycler) })
    await client.connect()
    const socket = tcpSocketOf(client)
    expect(socket).toBeInstanceOf(RecycledSocket)
    expect((socket as RecycledSocket).recycled).toBe(recyclingSupported)
    const tuple = tupleOf(client)
    const r = await client.query<{ v: number; fam: string }>('SELECT $1::int * 2 AS v, family(inet_client_addr())::text AS fam', [21])
    expect(r.rows).toEqual([{ v: 42, fam: '4' }])
    await client.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
    // The server did the active close and completed it (an RST leaves no TIME_WAIT anywhere).
    // A plain socket sends its FIN right after Terminate: who closes first is a race there.
    if (recyclingSupported) {
      expect(clientTimeWaits(plain.port).has(tuple)).toBe(false)
      expect(serverTimeWaits(plain.port).has(tuple)).toBe(true)
    }
  })

  it('serves consecutive clients from one fd (same kernel socket, new 4-tuple each time)', async () => {
    recycler = new SocketRecycler()
    const config = { ...tcpConfig(plain), stream: pgStream(recycler) }
    const inodes = new Set<string>()
    const tuples = new Set<string>()
    for (let i = 0; i < 10; i++) {
      const r = await roundTrip(config)
      expect(r.value).toBe(42)
      expect(r.recycled).toBe(recyclingSupported)
      inodes.add(r.inode)
      tuples.add(r.tuple)
      await released(recycler)
    }
    // passthrough: a kernel socket per connection
    expect(inodes.size).toBe(recyclingSupported ? 1 : 10)
    expect(tuples.size).toBe(10)
    expectRecycled(recycler.stats(), { fdsCreated: 1, connections: 10, reusedConnections: 9, resetsSent: 0 })
    if (recyclingSupported) {
      const tw = clientTimeWaits(plain.port)
      expect([...tuples].filter((t) => tw.has(t))).toEqual([])
    }
  })

  it('connection strings, and a host name (localhost) resolved by the socket', async () => {
    recycler = new SocketRecycler()
    const { user, database } = servers()
    const stream = pgStream(recycler)
    for (const host of ['127.0.0.1', 'localhost']) {
      const client = new pg.Client({ connectionString: `postgresql://${user}@${host}:${plain.port}/${database}?application_name=cs`, stream })
      await client.connect()
      const r = await client.query<{ app: string }>('SELECT current_setting($1) AS app', ['application_name'])
      expect(r.rows[0]!.app).toBe('cs')
      expect((tcpSocketOf(client) as RecycledSocket).recycled).toBe(recyclingSupported)
      await client.end()
    }
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 2, resetsSent: 0 })
  })

  it.runIf(ipv6)('IPv6: host ::1 and a [::1] connection string take fds of the IPv6 pool', async () => {
    recycler = new SocketRecycler()
    const { user, database } = servers()
    const stream = pgStream(recycler)
    const configs: pg.ClientConfig[] = [
      { ...tcpConfig(plain, '::1'), stream },
      { connectionString: `postgres://${user}@[::1]:${plain.port}/${database}`, stream },
    ]
    for (const config of configs) {
      const client = new pg.Client(config)
      await client.connect()
      const r = await client.query<{ addr: string }>('SELECT host(inet_client_addr()) AS addr')
      expect(r.rows[0]!.addr).toBe('::1')
      expect(tcpSocketOf(client).remoteFamily).toBe('IPv6')
      expect((tcpSocketOf(client) as RecycledSocket).recycled).toBe(recyclingSupported)
      await client.end()
      await released(recycler)
    }
    expectRecycled(recycler.stats(), { connections: 2, reusedConnections: 1, fdsCreated: 1, peerClosedFirst: 2, resetsSent: 0 })
  })

  it('a Unix-socket host passes through to a plain socket, unharmed, and its fd is closed', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const { user, database } = servers()
    const client = new pg.Client({ host: plain.socketDir, port: plain.port, user, database, stream: pgStream(recycler) })
    await client.connect()
    const socket = tcpSocketOf(client) as RecycledSocket
    expect(socket.recycled).toBe(false)
    expect(socket.remoteAddress).toBeUndefined()
    const r = await client.query<{ addr: string | null; v: number }>('SELECT inet_client_addr() AS addr, 6 * 7 AS v')
    expect(r.rows).toEqual([{ addr: null, v: 42 }])
    await client.end()
    await released(recycler)
    // plain path: counted as a connection and an fd opened and closed, none of the pool's
    expectRecycled(recycler.stats(), { connections: 1, fdsCreated: 1, fdsClosed: 1, idle: 0, recycled: 0, active: 0 })
    await until(() => socketsSince(baseline) === 0, 'the Unix socket fd to close')
  })

  it('keepAlive: pg sets SO_KEEPALIVE on the recycled socket; the next tenant of the fd starts without it', async () => {
    recycler = new SocketRecycler()
    const keepAliveOf = (port: number): string => {
      const out = execFileSync('ss', ['-Htno', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' })
      return /timer:\((\w+)/.exec(out)?.[1] ?? 'none'
    }
    const a = new pg.Client({ ...tcpConfig(plain), stream: pgStream(recycler), keepAlive: true, keepAliveInitialDelayMillis: 30_000 })
    await a.connect()
    const inode = socketInode(fdOf(tcpSocketOf(a)))
    expect(keepAliveOf(tcpSocketOf(a).localPort!)).toBe('keepalive')
    await a.end()
    await released(recycler)
    const b = new pg.Client({ ...tcpConfig(plain), stream: pgStream(recycler) })
    await b.connect()
    // passthrough: a kernel socket of its own, which starts without SO_KEEPALIVE anyway
    if (recyclingSupported) expect(socketInode(fdOf(tcpSocketOf(b)))).toBe(inode)
    expect(keepAliveOf(tcpSocketOf(b).localPort!)).toBe('none')
    await b.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 2, reusedConnections: 1 })
  })

  it('pgStream() without a recycler uses defaultRecycler()', async () => {
    const before = defaultRecycler().stats().connections
    const client = new pg.Client({ ...tcpConfig(tls), stream: pgStream() })
    await client.connect()
    expect((tcpSocketOf(client) as RecycledSocket).recycled).toBe(recyclingSupported)
    expect(defaultRecycler().stats()).toMatchObject({ mode: recyclingSupported ? 'recycling' : 'passthrough', connections: before + 1 })
    await client.end()
    await released(defaultRecycler())
    await defaultRecycler().close()
  })

  it("a passthrough recycler gives pg plain sockets with the same API (FDRECYCLE_DISABLE's mode)", async () => {
    recycler = new SocketRecycler({ mode: 'passthrough' })
    const baseline = openSockets()
    const client = new pg.Client({ ...tcpConfig(plain), stream: pgStream(recycler) })
    await client.connect()
    expect((tcpSocketOf(client) as RecycledSocket).recycled).toBe(false)
    expect((await client.query<{ v: number }>('SELECT 1 AS v')).rows[0]!.v).toBe(1)
    await client.end()
    expect(recycler.stats()).toMatchObject({ mode: 'passthrough', connections: 1, fdsCreated: 1, fdsClosed: 1, active: 0 })
    await until(() => socketsSince(baseline) === 0, 'the plain fd to close')
  })

  it('rejects what is not a recycler with a typed error, and leaks nothing', () => {
    const baseline = openSockets()
    for (const bad of [42, 'recycler', null, {}, { createSocket: 1 }]) {
      expect(() => pgStream(bad as unknown as SocketRecycler)).toThrow(InvalidArgumentError)
      try {
        pgStream(bad as unknown as SocketRecycler)
      } catch (err) {
        expect((err as InvalidArgumentError).code).toBe('ERR_FDRECYCLE_INVALID_ARGUMENT')
        expect((err as Error).message).toMatch(/expects a SocketRecycler/)
      }
    }
    expect(socketsSince(baseline)).toBe(0)
  })

  it('a closed recycler: the connect error reaches the app through pg, and nothing leaks', async () => {
    recycler = new SocketRecycler()
    await recycler.close()
    const baseline = openSockets()
    const client = new pg.Client({ ...tcpConfig(plain), stream: pgStream(recycler) })
    const err = await client.connect().then(() => null, (e: unknown) => e)
    expect((err as { code?: string }).code).toBe('ERR_FDRECYCLE_CLOSED')
    expect(socketsSince(baseline)).toBe(0)
  })
})
