import { afterEach, describe, expect, it } from 'vitest'
import mysql from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { SocketRecycler } from '@fdrecycle/core'
import { mysqlStream } from '@fdrecycle/mysql-adapter'
import { blackholeListener } from '../../../test/helpers/blackhole.js'
import { closeAfterClientFin, closedPort, tcpServer } from '../../../test/helpers/servers.js'
import { errorShape, expectRecycled, openSockets, recyclingSupported, released, server, socketsSince, tcpConfig, until } from './helpers.js'

const { user, password, database, ipv6 } = server()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

/** The fields an app branches on, mysql2's own (`fatal`) included. */
function shape(err: unknown): Record<string, unknown> {
  return { ...errorShape(err), fatal: (err as { fatal?: unknown } | null)?.fatal }
}

/**
 * One createConnection() of the callback API, with or without the adapter: the error passed to
 * connect()'s callback, the connection's 'error' events and whether 'end' came, in order.
 */
async function attempt(options: mysql.ConnectionOptions, stream?: ReturnType<typeof mysqlStream>): Promise<{ err: unknown; events: string[] }> {
  const connection = mysql.createConnection({ ...options, ...(stream ? { stream } : {}) })
  const events: string[] = []
  connection.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code}`))
  connection.on('end', () => events.push('end'))
  const err = await new Promise<unknown>((resolve) => connection.connect((e) => resolve(e ?? null)))
  // mysql2 reports a failed handshake once, through the callback; the socket is destroyed
  await until(() => (connection as unknown as { stream: { destroyed: boolean } }).stream.destroyed, 'the stream to be destroyed')
  return { err, events }
}

describe('a server that is down, or does not answer', () => {
  const hosts = ['127.0.0.1', 'localhost', ...(ipv6 ? ['::1'] : [])]
  it.each(hosts)('host %s, nothing listening: the error is the same as without the adapter; the fds go back to the pool', async (host) => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const port = await closedPort(host === '::1' ? '::1' : '127.0.0.1')
    const plainRun = await attempt({ host, port, user, password, database })
    const recycledRun = await attempt({ host, port, user, password, database }, mysqlStream(recycler))
    expect((plainRun.err as { code?: string }).code).toMatch(/ECONNREFUSED/)
    expect(shape(recycledRun.err)).toEqual(shape(plainRun.err))
    expect(recycledRun.events).toEqual(plainRun.events)
    // the promise API rejects with the same error
    const viaPromise = await mysqlPromise.createConnection({ host, port, user, password, database, stream: mysqlStream(recycler) }).then(() => null, (e: unknown) => e)
    expect(errorShape(viaPromise)).toMatchObject({ code: errorShape(plainRun.err).code, message: errorShape(plainRun.err).message })
    await released(recycler)
    if (recyclingSupported) expect(recycler.stats()).toMatchObject({ fdsClosed: 0, active: 0, resetsSent: 0 })
    await recycler.close()
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
  })

  it('connectTimeout, a SYN that is never answered: ETIMEDOUT as without the adapter; the aborted fd is reused', async () => {
    recycler = new SocketRecycler()
    const hole = blackholeListener()
    // the first connect fills the backlog of one; later SYNs are dropped
    const filler = await mysqlPromise.createConnection({ host: '127.0.0.1', port: hole.port, user, connectTimeout: 100 }).catch((e: unknown) => e)
    try {
      const options = { host: '127.0.0.1', port: hole.port, user, password, database, connectTimeout: 150 }
      const plainRun = await attempt(options)
      const recycledRun = await attempt(options, mysqlStream(recycler))
      expect((plainRun.err as { code?: string }).code).toBe('ETIMEDOUT')
      expect(shape(recycledRun.err)).toEqual(shape(plainRun.err))
      expect(recycledRun.events).toEqual(plainRun.events)
      await released(recycler)
      const live = await mysqlPromise.createConnection({ ...tcpConfig(), stream: mysqlStream(recycler) })
      await live.query('SELECT 1')
      await live.end()
      await released(recycler)
      expectRecycled(recycler.stats(), { connections: 2, reusedConnections: 1, fdsCreated: 1, fdsClosed: 0 })
    } finally {
      void filler
      hole.close()
    }
  })

  it('connectTimeout, a server that accepts and never greets: the same error; our FIN after finDelayMs, no RST, the fd reused', async () => {
    recycler = new SocketRecycler({ finDelayMs: 100 })
    await using silent = await tcpServer(closeAfterClientFin)
    const options = { host: '127.0.0.1', port: silent.port, user, password, database, connectTimeout: 150 }
    const plainRun = await attempt(options)
    const recycledRun = await attempt(options, mysqlStream(recycler))
    expect((plainRun.err as { code?: string }).code).toBe('ETIMEDOUT')
    expect(shape(recycledRun.err)).toEqual(shape(plainRun.err))
    expect(recycledRun.events).toEqual(plainRun.events)
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, finSentFirst: 1, drainTimeouts: 0, resetsSent: 0, fdsClosed: 0 })
    expect(silent.errors).toEqual([])
  })
})

describe('a connection the server drops', () => {
  it('KILL CONNECTION from another session: the same error and events as without the adapter; the fd is reused', async () => {
    recycler = new SocketRecycler()
    const admin = await mysqlPromise.createConnection(tcpConfig())
    try {
      const run = async (stream?: ReturnType<typeof mysqlStream>): Promise<{ err: unknown; events: string[] }> => {
        const connection = mysql.createConnection({ ...tcpConfig(), ...(stream ? { stream } : {}) })
        const events: string[] = []
        const lost = new Promise<unknown>((resolve) => connection.on('error', (e: NodeJS.ErrnoException) => {
          events.push(`error ${e.code}`)
          resolve(e)
        }))
        connection.on('end', () => events.push('end'))
        await new Promise<void>((resolve, reject) => connection.connect((e) => (e ? reject(e) : resolve())))
        await admin.query(`KILL CONNECTION ${connection.threadId}`)
        const err = await lost
        // a command after the loss fails the same way too
        const after = await new Promise<unknown>((resolve) => connection.query('SELECT 1', (e) => resolve(e)))
        events.push(`after ${(after as NodeJS.ErrnoException | null)?.message}`)
        return { err, events }
      }
      const plainRun = await run()
      const recycledRun = await run(mysqlStream(recycler))
      expect(shape(recycledRun.err)).toEqual(shape(plainRun.err))
      expect(recycledRun.events).toEqual(plainRun.events)
      await released(recycler)
      // the server closed first: our FIN follows its own, the fd is reused
      expectRecycled(recycler.stats(), { connections: 1, recycled: 1, peerClosedFirst: 1, resetsSent: 0, fdsClosed: 0 })
    } finally {
      await admin.end()
    }
  })
})
