// Scenario 3c: mysql2 churn, createConnection / SELECT 1 / end() (COM_QUIT), plain sockets vs
// `stream: mysqlStream(recycler)`, against a MariaDB started here (own process).
import { target } from '../lib/ab.mjs'
import { requireAdapter, requireClient } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { LOOPBACKS, startMariaDb } from '../lib/servers.mjs'

export const name = 'mysql'
export const title = 'mysql2: createConnection / SELECT 1 / end() churn (MariaDB)'

export async function run({ quick, rounds, log }) {
  await requireClient('mysql2')
  await requireAdapter('@fdrecycle/mysql-adapter', ['mysqlStream'])
  const server = await startMariaDb()
  log(`mysql: MariaDB ${server.version} on port ${server.port} (${LOOPBACKS.join(', ')}), pid ${server.pid}`)
  try {
    const base = { port: server.port, user: server.user, password: server.password, database: server.database }
    const n = quick ? 150 : 400
    const inFlight = 4
    const res = await churnAB({
      kind: 'mysql',
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
      target('mysql2 recycled / plain conn/s', res.ratios.recycledVsPlain.median, '>=', 1.0),
      target('mysql2 client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('mysql2', res, targets[0])
    notes.push("mysql2's end() sends COM_QUIT and waits for the server's close: plain sockets leave the TIME_WAIT on the server too; the gain is fds and socket()/close() calls.")
    return {
      params: { rounds, connectionsPerRound: n, inFlight, server: `MariaDB ${server.version}, own process`, query: 'SELECT 1' },
      ...res,
      targets,
      notes,
      rows: [churnRow(`mysql2 connect/query/end, ${inFlight} in flight`, res, targets[0])],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
