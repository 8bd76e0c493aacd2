import { afterEach, describe, expect, it } from 'vitest'
import mysql from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { InvalidArgumentError, RecycledSocket, SocketRecycler, defaultRecycler } from '@fdrecycle/core'
import { mysqlStream } from '@fdrecycle/mysql-adapter'
import {
  clientTimeWaits, expectRecycled, fdOf, openSockets, recyclingSupported, released, server, serverTimeWaits, socketInode,
  socketsSince, tcpConfig, tcpSocketOf, tupleOf, until,
} from './helpers.js'

const { port, ipv6 } = server()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

describe('mysql2 connections over recycled sockets', () => {
  it('callback API: a query, then end(): COM_QUIT, the server closes first, no RST and no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const connection = mysql.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
    const rows = await new Promise<unknown>((resolve, reject) => {
      connection.query('SELECT 6 * 7 AS v', (err, result) => (err ? reject(err) : resolve(result)))
    })
    expect(rows).toEqual([{ v: 42 }])
    const socket = tcpSocketOf(connection)
    expect(socket).toBeInstanceOf(RecycledSocket)
    expect((socket as RecycledSocket).recycled).toBe(recyclingSupported)
    expect(socket.remoteFamily).toBe('IPv4')
    const tuple = tupleOf(connection)
    await new Promise<void>((resolve, reject) => connection.end((err) => (err ? reject(err) : resolve())))
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0, fdsClosed: 0 })
    // The server did the active close and completed it. A plain socket answers the server's FIN
    // with its own, so the server keeps the TIME_WAIT there too; recycled, ours is never first.
    if (recyclingSupported) {
      expect(clientTimeWaits(port).has(tuple)).toBe(false)
      await until(() => serverTimeWaits(port).has(tuple), `the server's TIME_WAIT for ${tuple}`)
    }
  })

  it('promise API: consecutive connections are served by one fd (same kernel socket, a new 4-tuple each)', async () => {
    recycler = new SocketRecycler()
    const inodes = new Set<string>()
    const tuples = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const connection = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
      const [rows] = await connection.query('SELECT ? + 1 AS v', [i])
      expect(rows).toEqual([{ v: i + 1 }])
      inodes.add(socketInode(fdOf(tcpSocketOf(connection))))
      tuples.add(tupleOf(connection))
      await connection.end()
      await released(recycler)
    }
    expect(inodes.size).toBe(recyclingSupported ? 1 : 8)
    expect(tuples.size).toBe(8)
    expectRecycled(recycler.stats(), { connections: 8, reusedConnections: 7, fdsCreated: 1, peerClosedFirst: 8, finSentFirst: 0, resetsSent: 0 })
    if (recyclingSupported) {
      const tw = clientTimeWaits(port)
      expect([...tuples].filter((t) => tw.has(t))).toEqual([])
    }
  })

  it('createPool (promise and callback): parallel queries, then pool.end() quits every connection; no client TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    const pool = mysqlPromise.createPool({ ...tcpConfig(), stream: mysqlStream(recycler), connectionLimit: 4 })
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => pool.query('SELECT ? AS v, SLEEP(0.01) AS s', [i])))
    expect(results.map(([rows]) => (rows as Array<{ v: number }>)[0]!.v)).toEqual(Array.from({ length: 16 }, (_, i) => i))
    const tuples = new Set<string>()
    const held = await Promise.all([pool.getConnection(), pool.getConnection()])
    for (const c of held) tuples.add(tupleOf(c))
    for (const c of held) c.release()
    // the callback API of the same pool
    const viaCallback = await new Promise<unknown>((resolve, reject) => {
      pool.pool.query('SELECT 1 AS one', (err, rows) => (err ? reject(err) : resolve(rows)))
    })
    expect(viaCallback).toEqual([{ one: 1 }])
    const opened = recycler.stats().connections
    expect(opened).toBeGreaterThanOrEqual(2)
    expect(opened).toBeLessThanOrEqual(4)
    await pool.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: opened, peerClosedFirst: opened, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0 })
    if (recyclingSupported) {
      const tw = clientTimeWaits(port)
      expect([...tuples].filter((t) => tw.has(t))).toEqual([])
    }
  })

  it('a host name (localhost) is resolved by the socket; keep-alive and TCP_NODELAY are set as mysql2 sets them on its own sockets', async () => {
    recycler = new SocketRecycler()
    const connection = await mysqlPromise.createConnection({ ...tcpConfig('localhost'), stream: mysqlStream(recycler), enableKeepAlive: true, keepAliveInitialDelay: 30_000 })
    const [rows] = await connection.query('SELECT 1 AS v')
    expect(rows).toEqual([{ v: 1 }])
    const socket = tcpSocketOf(connection) as RecycledSocket
    expect(socket.recycled).toBe(recyclingSupported)
    expect(socket.remoteAddress).toMatch(/^(127\.0\.0\.1|::1)$/)
    await connection.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, peerClosedFirst: 1, resetsSent: 0 })
  })

  it.runIf(ipv6)('IPv6: host ::1 takes an fd of the IPv6 pool', async () => {
    recycler = new SocketRecycler()
    for (let i = 0; i < 2; i++) {
      const connection = await mysqlPromise.createConnection({ ...tcpConfig('::1'), stream: mysqlStream(recycler) })
      expect(tcpSocketOf(connection).remoteFamily).toBe('IPv6')
      const [rows] = await connection.query('SELECT 1 AS v')
      expect(rows).toEqual([{ v: 1 }])
      await connection.end()
      await released(recycler)
    }
    expectRecycled(recycler.stats(), { connections: 2, reusedConnections: 1, fdsCreated: 1, peerClosedFirst: 2, resetsSent: 0 })
  })

  it('changeUser switches the user on the same recycled connection', async () => {
    recycler = new SocketRecycler()
    const { other, database } = server()
    const connection = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
    const tuple = tupleOf(connection)
    await connection.changeUser({ user: other.user, password: other.password, database })
    const [rows] = await connection.query('SELECT CURRENT_USER() AS u')
    expect(rows).toEqual([{ u: `${other.user}@%` }])
    expect(tupleOf(connection)).toBe(tuple)
    await connection.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, peerClosedFirst: 1, resetsSent: 0 })
  })

  it('a Unix socketPath passes through to a plain socket, and its fd is closed', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const { socketPath, user, password, database } = server()
    const connection = await mysqlPromise.createConnection({ socketPath, user, password, database, stream: mysqlStream(recycler) })
    expect((tcpSocketOf(connection) as RecycledSocket).recycled).toBe(false)
    const [rows] = await connection.query('SELECT 1 AS v')
    expect(rows).toEqual([{ v: 1 }])
    await connection.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, fdsCreated: 1, fdsClosed: 1, idle: 0, recycled: 0, active: 0 })
    await until(() => socketsSince(baseline) === 0, 'the Unix socket fd to close')
  })

  it('mysqlStream() without a recycler uses defaultRecycler()', async () => {
    const before = defaultRecycler().stats().connections
    const connection = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream() })
    expect((tcpSocketOf(connection) as RecycledSocket).recycled).toBe(recyclingSupported)
    expect(defaultRecycler().stats().connections).toBe(before + 1)
    await connection.end()
    await released(defaultRecycler())
    await defaultRecycler().close()
  })

  it('rejects what is not a recycler with a typed error, and leaks nothing', () => {
    const baseline = openSockets()
    for (const bad of [42, 'recycler', null, {}, { createConnection: 1 }]) {
      let caught: unknown
      try {
        mysqlStream(bad as unknown as SocketRecycler)
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
