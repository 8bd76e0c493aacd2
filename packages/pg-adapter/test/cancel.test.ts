import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import {
  cancelVia, clientTimeWaits, errorShape, expectRecycled, pidOf, recyclingSupported, released, servers, tcpConfig, tcpSocketOf, waitForActive,
} from './helpers.js'

const { plain, tls } = servers()

let recycler: SocketRecycler
let admin: pg.Client | undefined
afterEach(async () => {
  await admin?.end()
  admin = undefined
  await recycler?.close()
})

/** A plain client (no adapter) that watches and cancels backends. */
async function adminClient(server = plain): Promise<pg.Client> {
  admin = new pg.Client(tcpConfig(server))
  await admin.connect()
  return admin
}

describe('query cancellation', () => {
  it('pg_cancel_backend from another session: the query fails with 57014 as without the adapter, the client goes on', async () => {
    recycler = new SocketRecycler()
    const watcher = await adminClient()
    const run = async (withAdapter: boolean): Promise<unknown> => {
      const client = new pg.Client({ ...tcpConfig(plain), ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      await client.connect()
      const pid = pidOf(client)
      const pending = client.query('SELECT pg_sleep(30)').then(() => null, (e: unknown) => e)
      await waitForActive(watcher, pid, 'SELECT pg_sleep')
      const cancelled = await watcher.query<{ ok: boolean }>('SELECT pg_cancel_backend($1) AS ok', [pid])
      expect(cancelled.rows[0]!.ok).toBe(true)
      const err = await pending
      // the session survives a cancelled statement
      expect((await client.query<{ v: number }>('SELECT 7 AS v')).rows[0]!.v).toBe(7)
      await client.end()
      return err
    }
    const plainErr = await run(false)
    const recycledErr = await run(true)
    expect((plainErr as { code?: string }).code).toBe('57014')
    expect(errorShape(recycledErr)).toEqual(errorShape(plainErr))
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, resetsSent: 0 })
  })

  it("pg's cancel path (Client#cancel) opens its second connection through the same stream factory, recycled", async () => {
    recycler = new SocketRecycler()
    const watcher = await adminClient()
    const stream = pgStream(recycler)
    const client = new pg.Client({ ...tcpConfig(plain), stream })
    await client.connect()
    const query = client.query(new pg.Query('SELECT pg_sleep(30)'))
    const failed = once(query, 'error') as Promise<[Error & { code?: string }]>
    await waitForActive(watcher, pidOf(client), 'SELECT pg_sleep')

    const canceller = new pg.Client({ ...tcpConfig(plain), stream })
    let cancelTuple = ''
    let cancelStream: unknown
    let cancelRecycled: boolean | undefined
    const con = (canceller as unknown as { connection: pg.Connection & { stream: RecycledSocket } }).connection
    // Recorded here, checked below: an assertion thrown inside pg's listener would stop the cancel.
    con.once('connect', () => {
      cancelStream = con.stream
      cancelRecycled = con.stream.recycled
      cancelTuple = `${con.stream.localPort}->${con.stream.remotePort}`
    })
    cancelVia(canceller, client, query)
    const [err] = await failed
    expect(err.code).toBe('57014')
    expect(err.message).toBe('canceling statement due to user request')
    expect((await client.query<{ v: number }>('SELECT 8 AS v')).rows[0]!.v).toBe(8)
    await client.end()
    await released(recycler)
    // The cancel connection: CancelRequest, then the server closes it (first): recycled, no TIME_WAIT.
    expect(cancelStream).toBeInstanceOf(RecycledSocket)
    expect(cancelRecycled).toBe(recyclingSupported)
    expect(cancelTuple).not.toBe('')
    if (recyclingSupported) expect(clientTimeWaits(plain.port).has(cancelTuple)).toBe(false)
    expectRecycled(recycler.stats(), { connections: 2, recycled: 2, peerClosedFirst: 2, resetsSent: 0, fdsClosed: 0 })
  })

  it('cancels a query on a TLS connection (the CancelRequest goes in plain text, as pg does)', async () => {
    recycler = new SocketRecycler()
    const watcher = await adminClient(tls)
    const stream = pgStream(recycler)
    const ssl = { ca: servers().ca }
    const client = new pg.Client({ ...tcpConfig(tls), ssl, stream })
    await client.connect()
    expect(tcpSocketOf(client)).toBeInstanceOf(RecycledSocket)
    const query = client.query(new pg.Query('SELECT pg_sleep(30)'))
    const failed = once(query, 'error') as Promise<[Error & { code?: string }]>
    await waitForActive(watcher, pidOf(client), 'SELECT pg_sleep')
    cancelVia(new pg.Client({ ...tcpConfig(tls), ssl, stream }), client, query)
    const [err] = await failed
    expect(err.code).toBe('57014')
    await client.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 2, recycled: 2, resetsSent: 0, fdsClosed: 0 })
  })
})
