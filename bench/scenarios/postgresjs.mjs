// Scenario 3d: postgres.js churn, postgres() / SELECT 1 / sql.end() (Terminate), plain sockets vs
// `socket: postgresSocket(recycler)`, against a PostgreSQL started here (own processes).
import { target } from '../lib/ab.mjs'
import { requireAdapter, requireClient } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { LOOPBACKS, startPostgres } from '../lib/servers.mjs'

export const name = 'postgresjs'
export const title = 'postgres.js: postgres() / SELECT 1 / sql.end() churn'

export async function run({ quick, rounds, log }) {
  await requireClient('postgres')
  await requireAdapter('@fdrecycle/postgresjs-adapter', ['postgresSocket'])
  const server = await startPostgres()
  log(`postgresjs: PostgreSQL ${server.version} on port ${server.port} (${LOOPBACKS.join(', ')}), postmaster pid ${server.pid}`)
  try {
    const base = { port: server.port, user: server.user, database: server.database }
    const n = quick ? 150 : 400
    const inFlight = 4
    const res = await churnAB({
      kind: 'postgresjs',
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
      target('postgres.js recycled / plain conn/s', res.ratios.recycledVsPlain.median, '>=', 1.0),
      target('postgres.js client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('postgres.js', res, targets[0])
    notes.push('PostgreSQL forks a backend per connection (the server CPU above includes its backends), which exits at Terminate.')
    return {
      params: { rounds, connectionsPerRound: n, inFlight, server: `PostgreSQL ${server.version}, fsync off, own processes`, query: 'SELECT 1' },
      ...res,
      targets,
      notes,
      rows: [churnRow(`postgres.js connect/query/end, ${inFlight} in flight`, res, targets[0])],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
