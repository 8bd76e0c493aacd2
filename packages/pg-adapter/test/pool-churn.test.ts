import { describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream, type PgStreamFactory } from '@fdrecycle/pg-adapter'
import type { PgTestServer } from '../../../test/setup/postgres.js'
import {
  countClientTimeWaits, openSockets, passthroughStats, recyclingSupported, released, servers, serverTimeWaits,
  socketsSince, tcpConfig, tupleOf, until,
} from './helpers.js'

const { plain, tls } = servers()
// npm test: 25 bursts per server; `npm run soak` (FDRECYCLE_SOAK=1): 125.
const ROUNDS = process.env.FDRECYCLE_SOAK ? 125 : 25
const PER_ROUND = 16
// More than twice the time measured on a loaded 2-core machine (both runs, recycled and plain).
const CHURN_TIMEOUT = process.env.FDRECYCLE_SOAK ? 600_000 : 120_000
const MAX = 4

interface Churn {
  queries: number
  connections: number
  backendPids: Set<number>
  tuples: Set<string>
  ms: number
}

/**
 * Bursts of PER_ROUND queries through a pg.Pool of MAX clients, then an idle gap until
 * idleTimeoutMillis has removed every client (the pool's 'remove' events): each burst connects
 * anew, as an app with bursty traffic and a short idle timeout does.
 */
async function churn(server: PgTestServer, stream: PgStreamFactory | undefined, into: Churn): Promise<void> {
  const pool = new pg.Pool({ ...tcpConfig(server), ...(stream ? { stream } : {}), max: MAX, idleTimeoutMillis: 5 })
  let connected = 0
  let removed = 0
  let onRemove: (() => void) | null = null
  pool.on('connect', (client) => {
    connected++
    into.tuples.add(tupleOf(client))
  })
  pool.on('remove', () => {
    removed++
    onRemove?.()
  })
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.all(
        Array.from({ length: PER_ROUND }, (_, i) => {
          const n = round * PER_ROUND + i
          return pool.query<{ n: number; s: string; pid: number }>('SELECT $1::int AS n, $2::text AS s, pg_backend_pid() AS pid', [n, `q${n}`])
        }),
      )
      results.forEach((r, i) => {
        const n = round * PER_ROUND + i
        expect(r.rows).toEqual([{ n, s: `q${n}`, pid: r.rows[0]!.pid }])
        into.backendPids.add(r.rows[0]!.pid)
      })
      into.queries += results.length
      // The idle gap: wait for idleTimeoutMillis to remove every client (event, not a sleep).
      await new Promise<void>((resolve) => {
        onRemove = () => {
          if (removed === connected) resolve()
        }
        onRemove()
      })
      onRemove = null
    }
  } finally {
    await pool.end()
  }
  into.connections += connected
}

async function workload(stream: PgStreamFactory | undefined): Promise<Churn> {
  const result: Churn = { queries: 0, connections: 0, backendPids: new Set(), tuples: new Set(), ms: 0 }
  const started = performance.now()
  // Both servers at once: fds move between destinations.
  await Promise.all([churn(plain, stream, result), churn(tls, stream, result)])
  result.ms = Math.round(performance.now() - started)
  return result
}

describe('pg.Pool churning connections to two servers', () => {
  it('recycled: thousands of queries through a handful of fds, no client TIME_WAIT, fds back at baseline; plain: TIME_WAIT', async () => {
    const ports = [plain.port, tls.port]
    const baseline = openSockets()

    const recycler = new SocketRecycler()
    const recycled = await workload(pgStream(recycler))
    await released(recycler)
    const stats = recycler.stats()
    const recycledTimeWaits = countClientTimeWaits(recycled.tuples, ports)
    // The server's side of the same connections: a TIME_WAIT there means it closed first and the
    // close completed (FIN both ways, no RST).
    const serverSide = new Set([...serverTimeWaits(plain.port), ...serverTimeWaits(tls.port)])
    const recycledServerTimeWaits = [...recycled.tuples].filter((t) => serverSide.has(t)).length
    await recycler.close()
    const fdsAfterRecycled = socketsSince(baseline)

    // The same workload with pg's own sockets, in the same run, measured the same way. With
    // recycling off (FDRECYCLE_DISABLE=1) the adapter's run already was one: not run twice.
    const plainRun = recyclingSupported ? await workload(undefined) : undefined
    await until(() => socketsSince(baseline) === 0, 'the plain sockets to close')
    const plainTimeWaits = plainRun ? countClientTimeWaits(plainRun.tuples, ports) : undefined

    const report = {
      recycled: { queries: recycled.queries, connections: recycled.connections, ms: recycled.ms, clientTimeWaits: recycledTimeWaits, serverTimeWaits: recycledServerTimeWaits, stats },
      plain: plainRun && { queries: plainRun.queries, connections: plainRun.connections, ms: plainRun.ms, clientTimeWaits: plainTimeWaits },
      newSockets: { afterRecycledRun: fdsAfterRecycled, afterPlainRun: socketsSince(baseline) },
    }
    console.log(`[pg churn] ${JSON.stringify(report)}`)

    const expected = 2 * ROUNDS * PER_ROUND
    expect(recycled.queries).toBe(expected)
    // Each burst had its own connections: a new backend each time.
    expect(recycled.connections).toBeGreaterThanOrEqual(2 * ROUNDS)
    expect(recycled.backendPids.size).toBe(recycled.connections)
    // (Local ports, and so 4-tuples, may repeat: the kernel reuses a port once it is free, and on
    // loopback even one in TIME_WAIT, tcp_tw_reuse. TIME_WAIT counts attribute by tuple.)
    expect(stats.connections).toBe(recycled.connections)
    expect(fdsAfterRecycled).toBe(0)
    if (!plainRun) {
      expect(stats).toMatchObject(passthroughStats(recycled.connections))
      return
    }

    expect(stats.mode).toBe('recycling')
    // At most, per server: MAX in use by a burst while the previous burst's MAX are still being
    // released (pg-pool connects anew from the 'remove' of the last client; a released fd is lent
    // again one poll phase later).
    expect(stats.fdsCreated).toBeLessThanOrEqual(2 * 2 * MAX)
    expect(stats.reusedConnections).toBe(stats.connections - stats.fdsCreated)
    // Every connection past those first fds reused one, however long the run (npm test or soak).
    expect(stats.reusedConnections).toBeGreaterThanOrEqual(stats.connections - 2 * 2 * MAX)
    expect(stats.peerClosedFirst).toBe(stats.connections)
    expect(stats).toMatchObject({ resetsSent: 0, finSentFirst: 0, drainTimeouts: 0, discardedBytes: 0 })
    expect(recycledTimeWaits).toBe(0)
    expect(recycledServerTimeWaits).toBeGreaterThan(recycled.connections / 2)

    // pg's own sockets send their FIN right after Terminate: the client keeps the TIME_WAIT.
    expect(plainRun.queries).toBe(expected)
    expect(plainRun.connections).toBeGreaterThanOrEqual(2 * ROUNDS)
    expect(plainTimeWaits).toBeGreaterThan(plainRun.connections / 2)
  }, CHURN_TIMEOUT)
})
