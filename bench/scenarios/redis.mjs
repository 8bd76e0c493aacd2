// Scenario 3b: ioredis churn, connect / GET / quit(), plain vs `Connector: recycledConnector(recycler)`,
// against a redis-server started here (own process).
import { target } from '../lib/ab.mjs'
import { requireAdapter, requireClient } from '../lib/adapters.mjs'
import { churnAB, churnDetails, churnNotes, churnRow } from '../lib/churn.mjs'
import { LOOPBACKS, startRedis } from '../lib/servers.mjs'

export const name = 'redis'
export const title = 'ioredis: connect / GET / quit() churn'

export async function run({ quick, rounds, log }) {
  await requireClient('ioredis')
  await requireAdapter('@fdrecycle/redis-adapter', ['recycledConnector'])
  const server = await startRedis()
  log(`redis: redis-server ${server.version} on port ${server.port} (${LOOPBACKS.join(', ')}), pid ${server.pid}`)
  try {
    const n = quick ? 1000 : 3000
    const inFlight = 16
    const res = await churnAB({
      kind: 'redis',
      rounds,
      n,
      inFlight,
      target: { host: LOOPBACKS[0], port: server.port },
      timeWaitTargets: { plain: { host: LOOPBACKS[1], port: server.port }, recycled: { host: LOOPBACKS[2], port: server.port } },
      timeWaitN: quick ? 500 : 1000,
      serverPid: server.pid,
      log,
    })
    const targets = [
      target('ioredis recycled / plain conn/s', res.ratios.recycledVsPlain.median, '>=', 1.0),
      target('ioredis client TIME_WAIT, recycled', res.timeWait.recycled, '==', 0, { unit: 'count' }),
    ]
    const notes = churnNotes('ioredis', res, targets[0])
    if (res.timeWait.plain === 0) notes.push('Redis closes first after QUIT, so plain ioredis leaves no client TIME_WAIT either; the gain here is the reused fd, not TIME_WAIT.')
    return {
      params: { rounds, connectionsPerRound: n, inFlight, server: `redis-server ${server.version}, own process`, command: 'GET' },
      ...res,
      targets,
      notes,
      rows: [churnRow(`ioredis connect/GET/quit, ${inFlight} in flight`, res, targets[0])],
      details: churnDetails(res),
    }
  } finally {
    server.stop()
  }
}
