// Scenario 4a: HTTP churn through node:http, `new http.Agent({ keepAlive: false })` vs
// `new RecycledAgent({ recycler, keepAlive: false })`, against Debian's nginx (own process, one
// worker) answering every request with `Connection: close` (keepalive_requests 1).
import { target } from '../lib/ab.mjs'
import { requireAdapter } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { SkipError } from '../lib/servers.mjs'

export const name = 'http'
export const title = 'HTTP: GET with Connection: close churn (node:http Agent)'

export async function run({ quick, rounds, log }) {
  await requireAdapter('@fdrecycle/http-adapter', ['RecycledAgent'])
  const { startNginx, nginxBinary } = await import('../../scripts/nginx.mjs')
  if (!nginxBinary()) throw new SkipError('nginx is not installed (apt-get install nginx)')
  const close = { keepaliveRequests: 1 }
  const nginx = await startNginx({ servers: { rounds: close, twPlain: close, twRecycled: close }, workerProcesses: 1 })
  log(`http: nginx ${nginx.version} on ${nginx.host}, ports ${JSON.stringify(nginx.ports)}, master pid ${nginx.pid}`)
  try {
    const n = quick ? 1000 : 4000
    const inFlight = 16
    const t = (port) => ({ host: nginx.host, port, path: '/hello' })
    const res = await churnAB({
      kind: 'http',
      rounds,
      n,
      inFlight,
      target: t(nginx.ports.rounds),
      timeWaitTargets: { plain: t(nginx.ports.twPlain), recycled: t(nginx.ports.twRecycled) },
      timeWaitN: quick ? 500 : 1000,
      serverPid: nginx.pid,
      log,
    })
    const targets = [
      target('HTTP recycled / plain req/s', res.ratios.recycledVsPlain.median, '>=', 1.0),
      target('HTTP client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('HTTP', res, targets[0])
    if (res.timeWait.plain === 0) notes.push('nginx closes first after a `Connection: close` response, so plain node:http leaves no client TIME_WAIT either here.')
    return {
      params: { rounds, requestsPerRound: n, inFlight, server: `nginx ${nginx.version}, 1 worker, keepalive_requests 1`, path: '/hello' },
      ...res,
      targets,
      notes,
      rows: [{ ...churnRow(`HTTP GET, Connection: close, ${inFlight} in flight`, res, targets[0]), unit: 'req/s' }],
      details: churnDetails(res),
    }
  } finally {
    await nginx.stop()
  }
}
