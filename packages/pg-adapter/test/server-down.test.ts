import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import { errorShape, openSockets, passthroughStats, recyclingSupported, released, servers, socketsSince, until } from './helpers.js'

const { user, database, plain } = servers()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

/** A port with nothing listening on 127.0.0.1 nor ::1 (a server that is down). */
async function closedPort(): Promise<number> {
  const listen = (port: number, host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = net.createServer().once('error', reject)
      s.listen(port, host, () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
  for (;;) {
    const port = await listen(0, '127.0.0.1')
    if (!plain.ipv6) return port
    try {
      await listen(port, '::1')
      return port
    } catch {}
  }
}

const hosts = ['127.0.0.1', 'localhost', ...(plain.ipv6 ? ['::1'] : [])]

describe('a server that is down', () => {
  it.each(hosts)('host %s: pg.Client#connect fails exactly as without the adapter; the fd goes back to the pool', async (host) => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const port = await closedPort()
    const attempt = async (withAdapter: boolean): Promise<{ err: unknown; again: unknown }> => {
      const client = new pg.Client({ host, port, user, database, ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
      const err = await client.connect().then(() => null, (e: unknown) => e)
      // a second connect of the same client is refused the same way too
      const again = await client.connect().then(() => null, (e: unknown) => e)
      await ended
      return { err, again }
    }
    const plainRun = await attempt(false)
    const recycledRun = await attempt(true)
    expect((plainRun.err as { code?: string }).code).toBe('ECONNREFUSED')
    expect(errorShape(recycledRun.err)).toEqual(errorShape(plainRun.err))
    expect(errorShape(recycledRun.again)).toEqual(errorShape(plainRun.again))
    await released(recycler)
    const stats = recycler.stats()
    if (recyclingSupported) {
      // localhost tries each address with its own fd (one per family); every one comes back.
      expect(stats.fdsClosed).toBe(0)
      expect(stats.idle).toBe(stats.fdsCreated)
      expect(stats.resetsSent).toBe(0)
      expect(stats.active).toBe(0)
    } else {
      // one plain socket, which tries every address itself
      expect(stats).toMatchObject(passthroughStats(1))
    }
    await recycler.close()
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
  })

  it('a pg.Pool: pool.query rejects as without the adapter, and the fds go back to the pool for the next queries', async () => {
    recycler = new SocketRecycler()
    const port = await closedPort()
    const run = async (withAdapter: boolean): Promise<unknown[]> => {
      const pool = new pg.Pool({ host: '127.0.0.1', port, user, database, ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const errs: unknown[] = []
      for (let i = 0; i < 3; i++) errs.push(errorShape(await pool.query('SELECT 1').then(() => null, (e: unknown) => e)))
      expect(pool.totalCount).toBe(0)
      await pool.end()
      return errs
    }
    const plainErrs = await run(false)
    const recycledErrs = await run(true)
    expect(plainErrs[0]).toMatchObject({ code: 'ECONNREFUSED' })
    expect(recycledErrs).toEqual(plainErrs)
    await released(recycler)
    const stats = recycler.stats()
    if (recyclingSupported) {
      expect(stats).toMatchObject({ connections: 3, fdsClosed: 0, resetsSent: 0 })
      expect(stats.reusedConnections).toBe(3 - stats.fdsCreated)
      expect(stats.idle).toBe(stats.fdsCreated)
    } else {
      expect(stats).toMatchObject(passthroughStats(3))
    }
  })
})
