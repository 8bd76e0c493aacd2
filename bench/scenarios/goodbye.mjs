// Scenario: the goodbye pattern over raw TCP (pg Terminate, Redis QUIT, SMTP QUIT): connect, send a
// request, read the reply, write a goodbye line and end() at once; the server closes after reading
// it (bench/clients/goodbye-server.mjs, Node, own process). Plain `net.connect` sends its FIN with
// the goodbye and keeps the TIME_WAIT; recycled withholds it until the server's. 1 and 16 in flight.
import { join } from 'node:path'
import { target } from '../lib/ab.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { BENCH_DIR, startLineServer } from '../lib/procs.mjs'

export const name = 'goodbye'
export const title = 'Goodbye-then-end churn (request, reply, goodbye and end() at once; the server closes)'

export async function run({ quick, rounds, log }) {
  const host = '127.0.0.1'
  // five ports: the rounds, then one per mode and in-flight count for the TIME_WAIT phases (a
  // phase must not count the entries an earlier one left towards the same port)
  const server = await startLineServer(process.execPath, [join(BENCH_DIR, 'clients', 'goodbye-server.mjs'), host, '5'], { name: 'goodbye-server' })
  const [rounds0, ...twPorts] = server.ports
  log(`goodbye: goodbye server on ${host}, ports ${server.ports.join(', ')}, pid ${server.pid}`)
  const out = { params: { rounds, server: 'bench/clients/goodbye-server.mjs (Node, own process)' }, byInFlight: {}, targets: [], notes: [], rows: [], details: [] }
  try {
    for (const [i, [inFlight, n, threshold]] of [[1, quick ? 1000 : 3000, 1.05], [16, quick ? 2000 : 6000, 1.2]].entries()) {
      const [twPlain, twRecycled] = twPorts.slice(i * 2, i * 2 + 2)
      const t = (port) => ({ host, port, noDelay: true })
      const res = await churnAB({
        kind: 'goodbye',
        rounds,
        n,
        inFlight,
        target: t(rounds0),
        timeWaitTargets: { plain: t(twPlain), recycled: t(twRecycled) },
        timeWaitN: quick ? 500 : 1000,
        serverPid: server.pid,
        log,
      })
      out.byInFlight[inFlight] = res
      const tp = target(`goodbye-then-end recycled / plain conn/s, ${inFlight} in flight`, res.ratios.recycledVsPlain.median, '>=', threshold)
      const tw = target(`goodbye-then-end client TIME_WAIT, recycled, ${inFlight} in flight`, res.timeWait.recycled, '==', 0, { unit: 'count' })
      out.targets.push(tp, tw)
      out.notes.push(...churnNotes(`goodbye, ${inFlight} in flight`, res, tp).map((x) => `${inFlight} in flight: ${x}`))
      out.rows.push(churnRow(`Goodbye-then-end, ${inFlight} in flight`, res, tp))
      out.details.push(`**${inFlight} in flight**, ${n} connections per batch:`, '', ...churnDetails(res), '')
    }
    return out
  } finally {
    server.stop()
  }
}
