import { afterEach, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { SocketRecycler } from '@fdrecycle/core'
import { postgresSocket } from '@fdrecycle/postgresjs-adapter'
import { blackholeListener } from '../../../test/helpers/blackhole.js'
import { closedPort } from '../../../test/helpers/servers.js'
import { countClientTimeWaits, errorShape, expectRecycled, recyclingSupported, released, servers, trackedSocket, tupleOfSocket } from './helpers.js'

const { plain, tls, user, database, ca } = servers()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

/** The fields of a postgres.js error an app branches on (with and without the adapter alike). */
function shape(err: unknown): Record<string, unknown> {
  return errorShape(err)
}

describe('postgres.js ssl over recycled sockets', () => {
  it.each([
    ['localhost', 'the server CA', { ca }],
    ['127.0.0.1', 'the server CA', { ca }],
    ['127.0.0.1', "'require'", 'require'],
  ] as const)('host %s, ssl with %s: postgres.js upgrades the recycled socket; the fd is reused', async (host, _what, ssl) => {
    recycler = new SocketRecycler()
    const { socket, made, inodes } = trackedSocket(recycler)
    for (let i = 0; i < 3; i++) {
      const sql = postgres({ host, port: tls.port, user, database, ssl: ssl as postgres.Options<{}>['ssl'], socket, max: 1 })
      const rows = await sql<{ ssl: boolean }[]>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`
      expect(rows[0]!.ssl).toBe(true)
      await sql.end()
      await released(recycler)
    }
    // postgres.js takes the TLS servername from socket.host (none for an IP address)
    expect(made.map((s) => s.host)).toEqual([host, host, host])
    expect(inodes.size).toBe(recyclingSupported ? 1 : 3)
    expectRecycled(recycler.stats(), { connections: 3, reusedConnections: 2, fdsCreated: 1, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
  })

  it('a certificate the client does not trust: the same error as without the adapter; the fd is reused', async () => {
    recycler = new SocketRecycler()
    const run = async (withAdapter: boolean): Promise<unknown> => {
      const sql = postgres({ host: 'localhost', port: tls.port, user, database, ssl: { rejectUnauthorized: true }, max: 1, ...(withAdapter ? { socket: postgresSocket(recycler) } : {}) })
      const err = await sql`SELECT 1`.then(() => null, (e: unknown) => e)
      await sql.end()
      return err
    }
    const plainErr = await run(false)
    const recycledErr = await run(true)
    expect((plainErr as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    expect(shape(recycledErr)).toEqual(shape(plainErr))
    await released(recycler)
    // a handshake aborted with the server's bytes unread ends with a reset, as a plain close would
    expectRecycled(recycler.stats(), { connections: 1, drainTimeouts: 0, fdsClosed: 0 })
  })

  it('sql.end() over TLS: client TIME_WAIT of plain (passthrough) and recycled sockets (reported, see the README)', async () => {
    recycler = new SocketRecycler()
    const passthrough = new SocketRecycler({ mode: 'passthrough' })
    const counts: Record<string, number> = {}
    for (const mode of ['plain', 'recycled'] as const) {
      const { socket, made } = trackedSocket(mode === 'plain' ? passthrough : recycler)
      for (let i = 0; i < 5; i++) {
        const sql = postgres({ host: 'localhost', port: tls.port, user, database, ssl: { ca }, socket, max: 1 })
        await sql`SELECT 1`
        await sql.end()
      }
      await released(recycler)
      counts[mode] = countClientTimeWaits(made.map(tupleOfSocket), [tls.port])
    }
    await passthrough.close()
    console.log(`[postgres.js tls end] client TIME_WAIT of 5 connections: ${JSON.stringify(counts)}`)
    expectRecycled(recycler.stats(), { connections: 5, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
  })
})

describe('host lists and servers that are down', () => {
  it('a host that is down, then one that is up: the first query gets through, as without the adapter', async () => {
    recycler = new SocketRecycler()
    const down = await closedPort()
    const hosts = `127.0.0.1:${down},127.0.0.1:${plain.port}`
    const run = async (withAdapter: boolean): Promise<unknown> => {
      const tracked = trackedSocket(recycler)
      const sql = postgres(`postgres://${user}@${hosts}/${database}`, { max: 2, ...(withAdapter ? { socket: tracked.socket } : {}) })
      const rows = await Promise.all([sql<{ v: number }[]>`SELECT 1 AS v`, sql<{ v: number }[]>`SELECT 2 AS v, pg_sleep(0.01)`])
      await sql.end()
      if (withAdapter) {
        // attempts made before the first refusal went to the first host; the refusal moved the
        // cursor, and every attempt after it went to the live host
        const ports = tracked.made.map((s) => s.port)
        expect(ports[0]).toBe(down)
        const firstLive = ports.indexOf(plain.port)
        expect(firstLive).toBeGreaterThan(0)
        expect(ports.slice(firstLive)).toEqual(ports.slice(firstLive).map(() => plain.port))
      }
      return rows.map((r) => r[0]!.v)
    }
    expect(await run(true)).toEqual(await run(false))
    await released(recycler)
    if (recyclingSupported) expect(recycler.stats()).toMatchObject({ fdsClosed: 0, resetsSent: 0, active: 0 })
  })

  it('the first host up: every connection stays on it', async () => {
    recycler = new SocketRecycler()
    const down = await closedPort()
    const tracked = trackedSocket(recycler)
    const sql = postgres(`postgres://${user}@127.0.0.1:${plain.port},127.0.0.1:${down}/${database}`, { max: 3, socket: tracked.socket })
    await Promise.all(Array.from({ length: 6 }, () => sql`SELECT pg_sleep(0.01)`))
    await sql.end()
    expect(new Set(tracked.made.map((s) => s.port))).toEqual(new Set([plain.port]))
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: tracked.made.length, peerClosedFirst: tracked.made.length, resetsSent: 0 })
  })

  it('a single host that is down: the query fails with the same error as without the adapter', async () => {
    recycler = new SocketRecycler()
    const down = await closedPort()
    const run = async (withAdapter: boolean): Promise<unknown> => {
      const sql = postgres({ host: '127.0.0.1', port: down, user, database, max: 1, ...(withAdapter ? { socket: postgresSocket(recycler) } : {}) })
      const err = await sql`SELECT 1`.then(() => null, (e: unknown) => e)
      await sql.end()
      return err
    }
    const plainErr = await run(false)
    const recycledErr = await run(true)
    expect((plainErr as { code?: string }).code).toBe('ECONNREFUSED')
    expect(shape(recycledErr)).toEqual(shape(plainErr))
    await released(recycler)
    if (recyclingSupported) expect(recycler.stats()).toMatchObject({ fdsClosed: 0, active: 0 })
  })

  it('connect_timeout on a SYN never answered: CONNECT_TIMEOUT as without the adapter; the aborted fd is reused', async () => {
    recycler = new SocketRecycler()
    const hole = blackholeListener()
    try {
      // fill the backlog of one: later SYNs are dropped
      const filler = postgres({ host: '127.0.0.1', port: hole.port, user, database, max: 1, connect_timeout: 0.1 })
      await filler`SELECT 1`.catch(() => {})
      await filler.end({ timeout: 0 })
      const run = async (withAdapter: boolean): Promise<unknown> => {
        const sql = postgres({ host: '127.0.0.1', port: hole.port, user, database, max: 1, connect_timeout: 0.15, ...(withAdapter ? { socket: postgresSocket(recycler) } : {}) })
        const err = await sql`SELECT 1`.then(() => null, (e: unknown) => e)
        await sql.end({ timeout: 0 })
        return err
      }
      const plainErr = await run(false)
      const recycledErr = await run(true)
      expect((plainErr as { code?: string }).code).toBe('CONNECT_TIMEOUT')
      expect(shape(recycledErr)).toEqual(shape(plainErr))
      await released(recycler)
      expectRecycled(recycler.stats(), { connections: 1, fdsClosed: 0, active: 0 })
    } finally {
      hole.close()
    }
  })
})
