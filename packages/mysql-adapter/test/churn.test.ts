import { describe, expect, it } from 'vitest'
import mysqlPromise from 'mysql2/promise'
import { SocketRecycler } from '@fdrecycle/core'
import { mysqlStream, type MysqlStreamFactory } from '@fdrecycle/mysql-adapter'
import { openSockets, recyclingSupported, released, server, serverTimeWaits, socketsSince, tcpConfig, tupleOf, until } from './helpers.js'
import { countClientTimeWaits } from '../../pg-adapter/test/helpers.js'

const { port } = server()
// Bounded for a loaded machine: 100 + 100 connections took 26 s at a load average of 19 on 2 cores.
const CONNECTIONS = 100
const TIMEOUT_MS = 180_000
const IN_FLIGHT = 4

/** CONNECTIONS times connect / query / end(), IN_FLIGHT at a time; the 4-tuples used. */
async function workload(stream: MysqlStreamFactory | undefined): Promise<{ tuples: Set<string>; threadIds: Set<number> }> {
  const tuples = new Set<string>()
  const threadIds = new Set<number>()
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < CONNECTIONS) {
      const n = next++
      const connection = await mysqlPromise.createConnection({ ...tcpConfig(), ...(stream ? { stream } : {}) })
      tuples.add(tupleOf(connection))
      threadIds.add(connection.threadId)
      const [rows] = await connection.query('SELECT ? AS n', [n])
      expect(rows).toEqual([{ n }])
      await connection.end()
    }
  }))
  return { tuples, threadIds }
}

describe('mysql2 connections churning', () => {
  it('recycled: a handful of fds, no client TIME_WAIT, the server closes every connection first; plain mysql2 measured beside it', async () => {
    const baseline = openSockets()
    const recycler = new SocketRecycler()
    const recycled = await workload(mysqlStream(recycler))
    await released(recycler)
    const stats = recycler.stats()
    const recycledTimeWaits = countClientTimeWaits(recycled.tuples, [port])
    await until(() => [...recycled.tuples].filter((t) => serverTimeWaits(port).has(t)).length > 0, "the server's TIME_WAITs")
    await recycler.close()
    // mysql2's own sockets, same workload, same run (with recycling off the first run was one)
    const plainRun = recyclingSupported ? await workload(undefined) : undefined
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
    const plainTimeWaits = plainRun ? countClientTimeWaits(plainRun.tuples, [port]) : undefined
    console.log(`[mysql churn] ${JSON.stringify({ connections: CONNECTIONS, recycled: { clientTimeWaits: recycledTimeWaits, stats }, plain: plainRun && { clientTimeWaits: plainTimeWaits } })}`)

    expect(recycled.threadIds.size).toBe(CONNECTIONS)
    expect(stats.connections).toBe(CONNECTIONS)
    if (!recyclingSupported) return
    // IN_FLIGHT in use, plus those released but not yet lendable (a parked fd waits for the
    // server's last ACK, then one poll phase of quarantine): a few times IN_FLIGHT on a loaded
    // machine (12 of 200 in one run here), far below one per connection.
    expect(stats.fdsCreated).toBeLessThanOrEqual(5 * IN_FLIGHT)
    expect(stats.reusedConnections).toBe(CONNECTIONS - stats.fdsCreated)
    expect(stats).toMatchObject({ peerClosedFirst: CONNECTIONS, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0, discardedBytes: 0 })
    expect(recycledTimeWaits).toBe(0)
  }, TIMEOUT_MS)
})
