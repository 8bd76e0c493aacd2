import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import mysql from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { mysqlStream } from '@fdrecycle/mysql-adapter'
import {
  clientTimeWaits, errorShape, expectRecycled, fdOf, recyclingSupported, released, server, socketInode, tcpConfig, tcpSocketOf,
  tupleOf,
} from './helpers.js'

const { port, ca } = server()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

/** The stream mysql2 talks through after its TLS upgrade (a TLSSocket over the recycled one). */
function streamOf(connection: object): tls.TLSSocket {
  const core = (connection as { connection?: object }).connection ?? connection
  return (core as { stream: tls.TLSSocket }).stream
}

describe('mysql2 ssl over recycled sockets', () => {
  it('ssl with the server CA: mysql2 upgrades the recycled socket (tls.connect({ socket })); end() leaves no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const inodes = new Set<string>()
    const tuples: string[] = []
    for (let i = 0; i < 3; i++) {
      const connection = await mysqlPromise.createConnection({ ...tcpConfig('localhost'), ssl: { ca }, stream: mysqlStream(recycler) })
      expect(streamOf(connection)).toBeInstanceOf(tls.TLSSocket)
      expect(streamOf(connection).authorized).toBe(true)
      const socket = tcpSocketOf(connection)
      expect(socket).toBeInstanceOf(RecycledSocket)
      expect((socket as RecycledSocket).recycled).toBe(recyclingSupported)
      const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Ssl_version'")
      expect((rows as Array<{ Value: string }>)[0]!.Value).toMatch(/^TLSv1\.[23]$/)
      inodes.add(socketInode(fdOf(socket)))
      tuples.push(tupleOf(connection))
      await connection.end()
      await released(recycler)
    }
    expect(inodes.size).toBe(recyclingSupported ? 1 : 3)
    expectRecycled(recycler.stats(), { connections: 3, reusedConnections: 2, fdsCreated: 1, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
    if (recyclingSupported) {
      // COM_QUIT went inside TLS and the server closed first. Node's TLS answers the server's
      // close_notify with its own (below JavaScript), which reaches a socket the server has
      // closed: the server's kernel resets, and neither side keeps a TIME_WAIT. Plain mysql2 over
      // TLS ends the same way; what matters here is that our side keeps none.
      const tw = clientTimeWaits(port)
      expect(tuples.filter((t) => tw.has(t))).toEqual([])
    }
  })

  it('a pool over TLS: parallel queries, then pool.end()', async () => {
    recycler = new SocketRecycler()
    const pool = mysqlPromise.createPool({ ...tcpConfig('localhost'), ssl: { ca }, stream: mysqlStream(recycler), connectionLimit: 3 })
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => pool.query('SELECT ? AS v', [i])))
    expect(results.map(([rows]) => (rows as Array<{ v: number }>)[0]!.v)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
    const opened = recycler.stats().connections
    await pool.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: opened, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
  })

  it('a certificate the client does not trust: the same handshake error as without the adapter; the fd is reused', async () => {
    recycler = new SocketRecycler()
    const run = async (withAdapter: boolean): Promise<unknown> => {
      const connection = mysql.createConnection({ ...tcpConfig('localhost'), ssl: { rejectUnauthorized: true }, ...(withAdapter ? { stream: mysqlStream(recycler) } : {}) })
      connection.on('error', () => {})
      return new Promise<unknown>((resolve) => connection.connect((e) => resolve(e ?? null)))
    }
    const plainErr = await run(false)
    const recycledErr = await run(true)
    // mysql2 wraps the TLS error: HANDSHAKE_SSL_ERROR, the reason in the message
    expect(plainErr).toMatchObject({ code: 'HANDSHAKE_SSL_ERROR', message: expect.stringMatching(/self[- ]signed/) })
    expect(errorShape(recycledErr)).toEqual(errorShape(plainErr))
    await released(recycler)
    // a handshake aborted with the server's bytes unread ends with a reset, as a plain close would
    expectRecycled(recycler.stats(), { connections: 1, drainTimeouts: 0, fdsClosed: 0 })
  })
})
