import { afterEach, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { InvalidArgumentError, RecycledSocket, SocketRecycler, defaultRecycler } from '@fdrecycle/core'
import { postgresSocket } from '@fdrecycle/postgresjs-adapter'
import {
  clientTimeWaits, expectRecycled, openSockets, recyclingSupported, released, servers, serverTimeWaits, socketsSince,
  trackedSocket, tupleOfSocket, until,
} from './helpers.js'

const { plain, user, database } = servers()
const url = (host = '127.0.0.1', port = plain.port): string => `postgres://${user}@${host}:${port}/${database}`

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

describe('postgres.js over recycled sockets', () => {
  it('a query, then sql.end(): Terminate, the server closes first, no RST and no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const { socket, made } = trackedSocket(recycler)
    const sql = postgres(url(), { socket, max: 1, onnotice: () => {} })
    const rows = await sql<{ v: number; fam: string }[]>`SELECT ${21}::int * 2 AS v, family(inet_client_addr())::text AS fam`
    expect([...rows]).toEqual([{ v: 42, fam: '4' }])
    expect(made).toHaveLength(1)
    expect(made[0]).toBeInstanceOf(RecycledSocket)
    expect(made[0]!.recycled).toBe(recyclingSupported)
    expect(made[0]!.host).toBe('127.0.0.1')
    const tuple = tupleOfSocket(made[0]!)
    await sql.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
    if (recyclingSupported) {
      expect(clientTimeWaits(plain.port).has(tuple)).toBe(false)
      await until(() => serverTimeWaits(plain.port).has(tuple), `the server's TIME_WAIT for ${tuple}`)
    }
  })

  it('max: 4 with 16 queries in parallel, then sql.end(): every connection quits first from the server side', async () => {
    recycler = new SocketRecycler()
    const { socket, made } = trackedSocket(recycler)
    const sql = postgres(url(), { socket, max: 4 })
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => sql<{ v: number }[]>`SELECT ${i}::int AS v, pg_sleep(0.01)`))
    expect(results.map((r) => r[0]!.v)).toEqual(Array.from({ length: 16 }, (_, i) => i))
    expect(made.length).toBeGreaterThanOrEqual(1)
    expect(made.length).toBeLessThanOrEqual(4)
    const tuples = made.map(tupleOfSocket)
    await sql.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: made.length, peerClosedFirst: made.length, finSentFirst: 0, resetsSent: 0 })
    if (recyclingSupported) {
      const tw = clientTimeWaits(plain.port)
      expect(tuples.filter((t) => tw.has(t))).toEqual([])
    }
  })

  it('idle_timeout churn: connections closed by idle_timeout and opened again reuse the same fds', async () => {
    recycler = new SocketRecycler()
    const { socket, made, inodes } = trackedSocket(recycler)
    const sql = postgres(url(), { socket, max: 2, idle_timeout: 0.05 })
    for (let round = 0; round < 5; round++) {
      const rows = await Promise.all([sql<{ v: number }[]>`SELECT ${round}::int AS v`, sql<{ v: number }[]>`SELECT ${round + 1}::int AS v`])
      expect(rows.map((r) => r[0]!.v)).toEqual([round, round + 1])
      // idle_timeout ends each connection (Terminate, then the server closes): wait for that
      await until(() => made.every((s) => s.destroyed), 'idle_timeout to end the connections', 10_000)
      await released(recycler)
    }
    const connections = made.length
    expect(connections).toBeGreaterThanOrEqual(5)
    if (recyclingSupported) expect(inodes.size).toBeLessThanOrEqual(2)
    expectRecycled(recycler.stats(), { connections, peerClosedFirst: connections, finSentFirst: 0, resetsSent: 0, fdsClosed: 0 })
    if (recyclingSupported) {
      const tw = clientTimeWaits(plain.port)
      expect(made.map(tupleOfSocket).filter((t) => tw.has(t))).toEqual([])
    }
    await sql.end()
  })

  it('sql.end() waits for the queries in flight, as without the adapter', async () => {
    recycler = new SocketRecycler()
    const run = async (withAdapter: boolean): Promise<unknown[]> => {
      const sql = postgres(url(), { max: 2, ...(withAdapter ? { socket: postgresSocket(recycler) } : {}) })
      const queries = [sql`SELECT pg_sleep(0.05), 1 AS v`, sql`SELECT 2 AS v`]
      await Promise.resolve()
      const ended = sql.end()
      const results = await Promise.allSettled(queries)
      await ended
      const after = await sql`SELECT 1`.then(() => 'ok', (e: { code?: string }) => e.code)
      return [...results.map((r) => (r.status === 'fulfilled' ? (r.value[0] as { v: number }).v : (r.reason as { code?: string }).code)), after]
    }
    const plainRun = await run(false)
    const recycledRun = await run(true)
    expect(recycledRun).toEqual(plainRun)
    await released(recycler)
    expectRecycled(recycler.stats(), { resetsSent: 0, fdsClosed: 0, active: 0, connections: recycler.stats().connections })
  })

  it('query.cancel(): the CancelRequest goes over a recycled connection too', async () => {
    recycler = new SocketRecycler()
    const sql = postgres(url(), { socket: postgresSocket(recycler), max: 1 })
    await sql`SELECT 1`
    const query = sql`SELECT pg_sleep(30)`
    const outcome = query.then(() => 'finished', (e: { code?: string }) => e.code)
    const admin = postgres(url(), { max: 1 })
    await until(async () => (await admin`SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'`).length === 1, 'the sleep to run')
    await admin.end()
    query.cancel()
    expect(await outcome).toBe('57014')
    await sql.end()
    await released(recycler)
    // the query's connection and the cancel's own, both ended by the server
    expectRecycled(recycler.stats(), { connections: 2, peerClosedFirst: 2, resetsSent: 0, fdsClosed: 0 })
  })

  it('a host name (localhost) is resolved by the socket, and IPv6 takes the IPv6 pool', async () => {
    recycler = new SocketRecycler()
    // postgres.js splits a host string at ':' (its `host:port,host:port` lists): IPv6 goes as an array.
    for (const host of [['localhost'], ...(plain.ipv6 ? [['::1']] : [])]) {
      const { socket, made } = trackedSocket(recycler)
      const sql = postgres({ host: host as unknown as string, port: [plain.port] as unknown as number, user, database, socket, max: 1 })
      await sql`SELECT 1`
      expect(made[0]!.recycled).toBe(recyclingSupported)
      if (host[0] === '::1') expect(made[0]!.remoteFamily).toBe('IPv6')
      await sql.end()
      await released(recycler)
    }
    expectRecycled(recycler.stats(), { connections: plain.ipv6 ? 2 : 1, resetsSent: 0 })
  })

  it('a Unix-socket host passes through to a plain socket, and its fd is closed', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const { socket, made } = trackedSocket(recycler)
    const sql = postgres({ host: plain.socketDir, port: plain.port, user, database, socket, max: 1 })
    const rows = await sql<{ addr: string | null }[]>`SELECT inet_client_addr() AS addr`
    expect(rows[0]!.addr).toBeNull()
    expect(made[0]!.recycled).toBe(false)
    await sql.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, fdsCreated: 1, fdsClosed: 1, idle: 0, recycled: 0, active: 0 })
    await until(() => socketsSince(baseline) === 0, 'the Unix socket fd to close')
  })

  it('postgresSocket() without a recycler uses defaultRecycler()', async () => {
    const before = defaultRecycler().stats().connections
    const sql = postgres(url(), { socket: postgresSocket(), max: 1 })
    await sql`SELECT 1`
    expect(defaultRecycler().stats().connections).toBe(before + 1)
    await sql.end()
    await released(defaultRecycler())
    await defaultRecycler().close()
  })

  it('rejects what is not a recycler with a typed error, and leaks nothing', () => {
    const baseline = openSockets()
    for (const bad of [42, 'recycler', null, {}, { createConnection: 1 }]) {
      let caught: unknown
      try {
        postgresSocket(bad as unknown as SocketRecycler)
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as InvalidArgumentError).code).toBe('ERR_FDRECYCLE_INVALID_ARGUMENT')
      expect((caught as Error).message).toMatch(/expects a SocketRecycler/)
    }
    expect(socketsSince(baseline)).toBe(0)
  })
})
