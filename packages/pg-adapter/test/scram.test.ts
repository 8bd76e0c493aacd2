import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import {
  clientTimeWaits, errorShape, expectRecycled, openSockets, recyclingSupported, released, saslTrace, servers,
  socketsSince, tcpConfig, tupleOf,
} from './helpers.js'

const { plain, tls, scram } = servers()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

describe('password authentication (SCRAM-SHA-256) over recycled sockets', () => {
  it('logs in with SCRAM on both servers, through one fd', async () => {
    recycler = new SocketRecycler()
    for (const server of [plain, tls, plain, tls]) {
      const client = new pg.Client({ ...tcpConfig(server), user: scram.user, password: scram.password, stream: pgStream(recycler) })
      const sasl = saslTrace(client)
      await client.connect()
      expect(sasl).toEqual({ offered: ['SCRAM-SHA-256'], chosen: 'SCRAM-SHA-256', final: true })
      const r = await client.query<{ u: string }>('SELECT current_user AS u')
      expect(r.rows[0]!.u).toBe(scram.user)
      const tuple = tupleOf(client)
      await client.end()
      await released(recycler)
      if (recyclingSupported) expect(clientTimeWaits(server.port).has(tuple)).toBe(false)
    }
    expectRecycled(recycler.stats(), { connections: 4, reusedConnections: 3, fdsCreated: 1, peerClosedFirst: 4, resetsSent: 0 })
  })

  it('a password function (pg calls it per connection) works the same', async () => {
    recycler = new SocketRecycler()
    let calls = 0
    const pool = new pg.Pool({
      ...tcpConfig(plain), user: scram.user, password: async () => { calls++; return scram.password }, stream: pgStream(recycler), max: 1, maxUses: 1,
    })
    for (let i = 0; i < 3; i++) expect((await pool.query<{ v: number }>('SELECT $1::int AS v', [i])).rows[0]!.v).toBe(i)
    await pool.end()
    expect(calls).toBe(3)
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 3, recycled: 3, peerClosedFirst: 3, fdsClosed: 0 })
  })

  it('a wrong password fails as with pg alone (28P01); the server closes, the fd is recycled, nothing leaks', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const attempt = async (withAdapter: boolean): Promise<unknown> => {
      const client = new pg.Client({ ...tcpConfig(plain), user: scram.user, password: 'wrong', ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const err = await client.connect().then(() => null, (e: unknown) => e)
      return err
    }
    const plainErr = await attempt(false)
    const recycledErr = await attempt(true)
    expect((plainErr as { code?: string }).code).toBe('28P01')
    expect(errorShape(recycledErr)).toEqual(errorShape(plainErr))
    await released(recycler)
    // PostgreSQL closes after the FATAL error: the peer closed first, no RST.
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, resetsSent: 0, fdsClosed: 0 })
    await recycler.close()
    expect(socketsSince(baseline)).toBe(0)
  })
})
