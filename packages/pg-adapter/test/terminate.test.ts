// events.once() rejects on 'error': the 'end' and 'remove' waits below use plain listeners.
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import type { PgTestServer } from '../../../test/setup/postgres.js'
import {
  clientTimeWaits, errorShape, expectRecycled, openSockets, pidOf, recyclingSupported, released, servers, socketsSince,
  tcpConfig, tupleOf, until, waitForActive,
} from './helpers.js'

const { plain, tls, ca } = servers()

let recycler: SocketRecycler
const admins: pg.Client[] = []
afterEach(async () => {
  for (const a of admins.splice(0)) await a.end()
  await recycler?.close()
})

async function adminClient(server: PgTestServer): Promise<pg.Client> {
  const admin = new pg.Client(tcpConfig(server))
  await admin.connect()
  admins.push(admin)
  return admin
}

async function terminate(admin: pg.Client, pid: number): Promise<void> {
  const r = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid])
  expect(r.rows[0]!.ok).toBe(true)
}

interface Seen {
  events: string[]
  errors: Record<string, unknown>[]
  tuple: string
}

/** An idle client whose backend the server terminates: what the app sees, in order. */
async function idleTerminated(server: PgTestServer, ssl: boolean, withAdapter: boolean): Promise<Seen> {
  const admin = await adminClient(server)
  const client = new pg.Client({ ...tcpConfig(server), ...(ssl ? { ssl: { ca } } : {}), ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
  const seen: Seen = { events: [], errors: [], tuple: '' }
  client.on('error', (err) => {
    seen.events.push('error')
    seen.errors.push(errorShape(err))
  })
  await client.connect()
  seen.tuple = tupleOf(client)
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
  await terminate(admin, pidOf(client))
  await ended
  seen.events.push('end')
  // a terminated client refuses new queries the same way
  const after = await client.query('SELECT 1').then(() => null, (e: unknown) => e)
  seen.errors.push(errorShape(after))
  return seen
}

describe('pg_terminate_backend from the server side', () => {
  it.each([
    ['plain', plain, false],
    ['TLS', tls, true],
  ] as const)('an idle %s client: the same events and errors as without the adapter; the fd is recycled with no RST', async (_name, server, ssl) => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const plainSeen = await idleTerminated(server, ssl, false)
    const recycledSeen = await idleTerminated(server, ssl, true)
    expect(plainSeen.errors[0]).toMatchObject({ code: '57P01', message: 'terminating connection due to administrator command' })
    expect(recycledSeen.events).toEqual(plainSeen.events)
    expect(recycledSeen.errors).toEqual(plainSeen.errors)
    await released(recycler)
    // The server closed first.
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, resetsSent: 0, fdsClosed: 0 })
    if (recyclingSupported) expect(clientTimeWaits(server.port).has(recycledSeen.tuple)).toBe(false)
    for (const a of admins.splice(0)) await a.end()
    await recycler.close()
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
  })

  it('a query running when its backend is terminated fails as without the adapter', async () => {
    recycler = new SocketRecycler()
    const admin = await adminClient(plain)
    const run = async (withAdapter: boolean): Promise<unknown[]> => {
      const client = new pg.Client({ ...tcpConfig(plain), ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const errors: unknown[] = []
      client.on('error', (e) => errors.push(errorShape(e)))
      await client.connect()
      const pending = client.query('SELECT pg_sleep(30)').then(() => null, (e: unknown) => e)
      await waitForActive(admin, pidOf(client), 'SELECT pg_sleep')
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
      await terminate(admin, pidOf(client))
      errors.unshift(errorShape(await pending))
      await ended
      return errors
    }
    const plainErrors = await run(false)
    const recycledErrors = await run(true)
    expect(plainErrors[0]).toMatchObject({ code: '57P01' })
    expect(recycledErrors).toEqual(plainErrors)
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, resetsSent: 0 })
  })

  it("a pg.Pool's idle client terminated: the pool reports it, drops it, and goes on with a recycled fd", async () => {
    recycler = new SocketRecycler()
    const admin = await adminClient(plain)
    const pool = new pg.Pool({ ...tcpConfig(plain), stream: pgStream(recycler), max: 1 })
    const poolErrors: Error[] = []
    pool.on('error', (err) => poolErrors.push(err))
    const first = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    const pid = first.rows[0]!.pid
    const removed = new Promise<void>((resolve) => pool.once('remove', () => resolve()))
    await terminate(admin, pid)
    await removed
    expect(poolErrors.map((e) => (e as { code?: string }).code)).toEqual(['57P01'])
    const second = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    expect(second.rows[0]!.pid).not.toBe(pid)
    await pool.end()
    await released(recycler)
    const stats = recycler.stats()
    expectRecycled(stats, { connections: 2, recycled: 2, resetsSent: 0, fdsClosed: 0 })
    expect(stats.reusedConnections).toBe(2 - stats.fdsCreated)
  })
})
