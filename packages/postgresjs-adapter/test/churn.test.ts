import { describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { SocketRecycler } from '@fdrecycle/core'
import {
  countClientTimeWaits, openSockets, recyclingSupported, released, servers, socketsSince, trackedSocket, tupleOfSocket,
  until,
} from './helpers.js'

const { plain, user, database } = servers()
// Bounded for a loaded machine: 100 + 100 connections took 26 s at a load average of 19 on 2 cores.
const CONNECTIONS = 100
const TIMEOUT_MS = 180_000
const IN_FLIGHT = 4

/**
 * CONNECTIONS times postgres() / query / sql.end(), IN_FLIGHT at a time, through the given
 * recycler (passthrough: plain sockets); the 4-tuples used.
 */
async function workload(recycler: SocketRecycler): Promise<Set<string>> {
  const tuples = new Set<string>()
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < CONNECTIONS) {
      const n = next++
      const { socket, made } = trackedSocket(recycler)
      const sql = postgres({ host: '127.0.0.1', port: plain.port, user, database, socket, max: 1 })
      const rows = await sql<{ n: number }[]>`SELECT ${n}::int AS n`
      expect(rows[0]!.n).toBe(n)
      for (const s of made) tuples.add(tupleOfSocket(s))
      await sql.end()
    }
  }))
  return tuples
}

describe('postgres.js connections churning', () => {
  it('recycled: a handful of fds and no client TIME_WAIT; plain sockets (passthrough) measured beside it', async () => {
    const baseline = openSockets()
    const recycler = new SocketRecycler()
    const recycled = await workload(recycler)
    await released(recycler)
    const stats = recycler.stats()
    const recycledTimeWaits = countClientTimeWaits(recycled, [plain.port])
    await recycler.close()
    // postgres.js sends its FIN right after Terminate on a plain socket: measured in the same run
    // through a passthrough recycler (the same sockets postgres.js makes, net.Socket).
    const passthrough = new SocketRecycler({ mode: 'passthrough' })
    const plainRun = recyclingSupported ? await workload(passthrough) : undefined
    await passthrough.close()
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
    const plainTimeWaits = plainRun ? countClientTimeWaits(plainRun, [plain.port]) : undefined
    console.log(`[postgres.js churn] ${JSON.stringify({ connections: CONNECTIONS, recycled: { clientTimeWaits: recycledTimeWaits, stats }, plain: plainRun && { clientTimeWaits: plainTimeWaits } })}`)

    expect(stats.connections).toBe(CONNECTIONS)
    if (!recyclingSupported) return
    // IN_FLIGHT in use plus the released fds not yet lendable (see the mysql2 churn test)
    expect(stats.fdsCreated).toBeLessThanOrEqual(5 * IN_FLIGHT)
    expect(stats.reusedConnections).toBe(CONNECTIONS - stats.fdsCreated)
    expect(stats).toMatchObject({ peerClosedFirst: CONNECTIONS, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0, discardedBytes: 0 })
    expect(recycledTimeWaits).toBe(0)
  }, TIMEOUT_MS)
})
