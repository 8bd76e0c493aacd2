// One database client's churn scenario (connect / SELECT 1 / end, plain sockets vs its adapter,
// interleaved A/B), shared by the pg, postgres.js and mysql2 scenarios: they differ only in the
// client, the adapter, the server they start and what they say about it.
import { target } from './ab.mjs'
import { requireAdapter, requireClient } from './adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from './churn.mjs'
import { LOOPBACKS } from './servers.mjs'

/**
 * @param {{ kind: string, label: string, client: string, adapter: string, adapterExports: string[],
 *   start: () => Promise<any>, describe: (server: any) => string, credentials: (server: any) => object,
 *   note: string }} db
 */
export async function runDbChurn(db, { quick, rounds, log }) {
  await requireClient(db.client)
  await requireAdapter(db.adapter, db.adapterExports)
  const server = await db.start()
  log(`${db.kind}: ${db.describe(server)} on port ${server.port} (${LOOPBACKS.join(', ')}), pid ${server.pid}`)
  try {
    const base = { port: server.port, ...db.credentials(server) }
    const n = quick ? 150 : 400
    const inFlight = 4
    const res = await churnAB({
      kind: db.kind,
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
      target(`${db.label} recycled / plain conn/s`, res.ratios.recycledVsPlain.median, '>=', 1.0),
      target(`${db.label} client TIME_WAIT, recycled`, res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes(db.label, res, targets[0])
    notes.push(db.note)
    return {
      params: { rounds, connectionsPerRound: n, inFlight, server: db.describe(server), query: 'SELECT 1' },
      ...res,
      targets,
      notes,
      rows: [churnRow(`${db.label} connect/query/end, ${inFlight} in flight`, res, targets[0])],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
