// Scenario 3a: node-postgres churn, pg.Client connect / SELECT 1 / end(), plain sockets vs
// `stream: pgStream(recycler)`, against a PostgreSQL started here (own processes).
import { target } from '../lib/ab.mjs'
import { requireAdapter, requireClient } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { LOOPBACKS, startPostgres } from '../lib/servers.mjs'

export const name = 'pg'
export const title = 'pg: Client connect / SELECT 1 / end() churn'

export async function run({ quick, rounds, log }) {
  await requireClient('pg')
  await requireAdapter('@fdrecycle/pg-adapter', ['pgStream'])
  const server = await startPostgres()
  log(`pg: PostgreSQL ${server.version} on port ${server.port} (${LOOPBACKS.join(', ')}), postmaster pid ${server.pid}`)
  try {
    const base = { port: server.port, user: server.user, database: server.database }
    const n = quick ? 150 : 400
    const inFlight = 4
    const res = await churnAB({
      kind: 'pg',
      rounds,
      n,
      inFlight,
      target: { ...base, host: LOOPBACKS[0] },
      timeWaitTargets: { plain: { ...base, host: LOOPBACKS[1] }, recycled: { ...base, host: LOOPBACKS[2] } },
      timeWaitN: quick ? 200 : 500,
      serverPid: server.pid,
      log,
    })
    const targets = [
      target('pg recycled / plain conn/s', res.ratios.recycledVsPlain.median, '>=', 1.0),
      target('pg client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('pg', res, targets[0])
    notes.push('PostgreSQL forks a backend per connection (the server CPU above includes its backends), which exits at Terminate.')
    return {
      params: { rounds, connectionsPerRound: n, inFlight, server: `PostgreSQL ${server.version}, fsync off, own processes`, query: 'SELECT 1' },
      ...res,
      targets,
      notes,
      rows: [churnRow(`pg connect/query/end, ${inFlight} in flight`, res, targets[0])],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
