// Scenario 4b: HTTP churn through node:http as in `http`, against a node:http server in its own
// process (bench/clients/http-close-server.mjs) that answers every request with
// `Connection: close` and closes first: the first measurement (#14).
import { join } from 'node:path'
import { target } from '../lib/ab.mjs'
import { requireAdapter } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { BENCH_DIR, startLineServer } from '../lib/procs.mjs'

export const name = 'http-node'
export const title = 'HTTP: GET with Connection: close churn (node:http Agent) against a node:http server'

export async function run({ quick, rounds, log }) {
  await requireAdapter('@fdrecycle/http-adapter', ['RecycledAgent'])
  const host = '127.0.0.1'
  // three ports: the rounds, then one per mode for the TIME_WAIT phase
  const server = await startLineServer(process.execPath, [join(BENCH_DIR, 'clients', 'http-close-server.mjs'), host, '3'], { name: 'http-close-server' })
  const [rounds0, twPlain, twRecycled] = server.ports
  log(`http-node: node:http server on ${host}, ports ${server.ports.join(', ')}, pid ${server.pid}`)
  try {
    const n = quick ? 1000 : 4000
    const inFlight = 16
    const t = (port) => ({ host, port, path: '/hello' })
    const res = await churnAB({
      kind: 'http',
      rounds,
      n,
      inFlight,
      target: t(rounds0),
      timeWaitTargets: { plain: t(twPlain), recycled: t(twRecycled) },
      timeWaitN: quick ? 500 : 1000,
      serverPid: server.pid,
      log,
    })
    const targets = [
      target('HTTP (node:http server) recycled / plain req/s', res.ratios.recycledVsPlain.median, '>=', 1.1),
      target('HTTP (node:http server) client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('HTTP (node:http server)', res, targets[0])
    return {
      params: { rounds, requestsPerRound: n, inFlight, server: 'node:http, own process, Connection: close', path: '/hello' },
      ...res,
      targets,
      notes,
      rows: [{ ...churnRow(`HTTP GET, Connection: close, node:http server, ${inFlight} in flight`, res, targets[0]), unit: 'req/s' }],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
