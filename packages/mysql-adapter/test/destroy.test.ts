import { afterEach, describe, expect, it } from 'vitest'
import mysql from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { SocketRecycler } from '@fdrecycle/core'
import { mysqlStream } from '@fdrecycle/mysql-adapter'
import { clientTimeWaits, expectRecycled, recyclingSupported, released, server, serverTimeWaits, tcpConfig, tupleOf, until } from './helpers.js'

const { port, ca } = server()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

describe('mysql2 ends without COM_QUIT: the stream says it', () => {
  it('connection.destroy(): COM_QUIT goes before our FIN, the server closes first, no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const tuples: string[] = []
    for (let i = 0; i < 3; i++) {
      const connection = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
      await connection.query('SELECT 1')
      tuples.push(tupleOf(connection))
      connection.destroy()
      await released(recycler)
    }
    expectRecycled(recycler.stats(), { connections: 3, recycled: 3, peerClosedFirst: 3, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0 })
    if (recyclingSupported) {
      expect(tuples.filter((t) => clientTimeWaits(port).has(t))).toEqual([])
      await until(() => tuples.every((t) => serverTimeWaits(port).has(t)), "the server's TIME_WAITs")
    }
  })

  it('destroy() while a query still runs: the query gets the same outcome as without the adapter; then the server closes first', async () => {
    recycler = new SocketRecycler()
    const run = async (withAdapter: boolean): Promise<unknown[]> => {
      const connection = mysql.createConnection({ ...tcpConfig(), ...(withAdapter ? { stream: mysqlStream(recycler) } : {}) })
      connection.on('error', () => {})
      await new Promise<void>((resolve, reject) => connection.connect((e) => (e ? reject(e) : resolve())))
      const outcome = new Promise<unknown>((resolve) => {
        connection.query("SELECT SLEEP(0.1) AS s, LENGTH(REPEAT('x', 100000)) AS n", (err, rows) => resolve(err ? (err as NodeJS.ErrnoException).code : rows))
      })
      connection.destroy()
      return [await outcome]
    }
    const plainRun = await run(false)
    const recycledRun = await run(true)
    expect(recycledRun).toEqual(plainRun)
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0 })
  })

  it('a pool that drops idle connections (idleTimeout, maxIdle 0, no gracefulEnd): every one closed first by the server', async () => {
    recycler = new SocketRecycler()
    const pool = mysqlPromise.createPool({ ...tcpConfig(), stream: mysqlStream(recycler), connectionLimit: 3, maxIdle: 0, idleTimeout: 50 })
    const tuples = new Set<string>()
    for (let round = 0; round < 3; round++) {
      const held = await Promise.all([pool.getConnection(), pool.getConnection(), pool.getConnection()])
      for (const c of held) {
        tuples.add(tupleOf(c))
        await c.query('SELECT 1')
      }
      for (const c of held) c.release()
      // maxIdle 0: the pool destroys them after release (a timer of its own); wait for the recycler
      await until(() => recycler.stats().connections === (round + 1) * 3 && recycler.stats().active === 0, 'the pool to drop its idle connections')
      await released(recycler)
    }
    await pool.end()
    expectRecycled(recycler.stats(), { connections: 9, peerClosedFirst: 9, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0 })
    if (recyclingSupported) expect([...tuples].filter((t) => clientTimeWaits(port).has(t))).toEqual([])
  })

  it('TLS: no COM_QUIT can be added below TLS; destroy() ends as with a plain socket (our FIN after finDelayMs)', async () => {
    recycler = new SocketRecycler({ finDelayMs: 50 })
    const connection = await mysqlPromise.createConnection({ ...tcpConfig('localhost'), ssl: { ca }, stream: mysqlStream(recycler) })
    await connection.query('SELECT 1')
    connection.destroy()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
  })

  it('a passthrough recycler adds nothing: destroy() sends our FIN first, as plain mysql2 does', async () => {
    recycler = new SocketRecycler({ mode: 'passthrough' })
    const connection = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
    await connection.query('SELECT 1')
    const tuple = tupleOf(connection)
    connection.destroy()
    await until(() => recycler.stats().active === 0, 'the socket to close')
    // our FIN went first: the client holds the TIME_WAIT
    await until(() => clientTimeWaits(port).has(tuple), `the client's TIME_WAIT for ${tuple}`)
  })
})
