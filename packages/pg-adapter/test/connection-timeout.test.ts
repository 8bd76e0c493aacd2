import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import { closeAfterClientFin, tcpServer } from '../../../test/helpers/servers.js'
import { errorShape, expectRecycled, openSockets, released, servers, socketsSince, until } from './helpers.js'

const { user, database } = servers()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

// A server that accepts and never answers (a hung PostgreSQL: the kernel completes the handshake,
// nobody reads the startup message); it closes only after the client's FIN.
describe('connectionTimeoutMillis', () => {
  it.each([
    ['startup', false],
    ['TLS request', true],
  ] as const)('a server silent during %s: the timeout error is the same as without the adapter; the fd is recycled', async (_what, ssl) => {
    recycler = new SocketRecycler({ finDelayMs: 100 })
    await using silent = await tcpServer(closeAfterClientFin)
    const baseline = openSockets()
    const attempt = async (withAdapter: boolean): Promise<{ err: unknown; events: string[] }> => {
      const client = new pg.Client({
        host: '127.0.0.1', port: silent.port, user, database, connectionTimeoutMillis: 150, ...(ssl ? { ssl: true } : {}),
        ...(withAdapter ? { stream: pgStream(recycler) } : {}),
      })
      const events: string[] = []
      client.on('error', () => events.push('error'))
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve(void events.push('end'))))
      const err = await client.connect().then(() => null, (e: unknown) => e)
      await ended
      return { err, events }
    }
    const plainRun = await attempt(false)
    const recycledRun = await attempt(true)
    expect((plainRun.err as Error).message).toMatch(/timeout/)
    expect(errorShape(recycledRun.err)).toEqual(errorShape(plainRun.err))
    expect(errorShape((recycledRun.err as Error).cause)).toEqual(errorShape((plainRun.err as Error).cause))
    expect(recycledRun.events).toEqual(plainRun.events)
    // destroy() before the peer's EOF: the fd drains in the background, our FIN after finDelayMs,
    // the server closes on it, and the fd is reused (no RST, not closed).
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, finSentFirst: 1, drainTimeouts: 0, resetsSent: 0, fdsClosed: 0 })
    expect(silent.errors).toEqual([])
    await recycler.close()
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
  })

  it('a pg.Pool with connectionTimeoutMillis against a hung server, then a live one: the same fd serves', async () => {
    recycler = new SocketRecycler({ finDelayMs: 100 })
    await using silent = await tcpServer(closeAfterClientFin)
    const stream = pgStream(recycler)
    const hung = new pg.Pool({ host: '127.0.0.1', port: silent.port, user, database, connectionTimeoutMillis: 100, stream })
    const err = await hung.query('SELECT 1').then(() => null, (e: unknown) => e)
    expect((err as Error).message).toMatch(/timeout/)
    await hung.end()
    await released(recycler)
    const live = new pg.Pool({ host: '127.0.0.1', port: servers().plain.port, user, database, connectionTimeoutMillis: 5000, stream })
    expect((await live.query<{ v: number }>('SELECT 5 AS v')).rows[0]!.v).toBe(5)
    await live.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 2, reusedConnections: 1, fdsCreated: 1, fdsClosed: 0 })
  })
})
