// The shared shape of the client-library scenarios (pg, ioredis, HTTP): interleaved rounds of the
// Node worker's plain and recycled batches against one server, its CPU measured beside, then a
// TIME_WAIT phase where each mode talks to its own destination address.
import { field, interleave, pairRatio } from './ab.mjs'
import { forkWorker, processCpuSeconds } from './procs.mjs'
import { timeWaitTowards } from './system.mjs'

/**
 * @param {object} o
 * @param {string} o.kind churn-worker kind (pg, redis, http, tcp, goodbye)
 * @param {number} o.rounds
 * @param {number} o.n connections per batch
 * @param {number} o.inFlight
 * @param {object} o.target worker target for the rounds ({ host, port, ... })
 * @param {{ plain: object, recycled: object }} o.timeWaitTargets one destination per mode
 * @param {number} o.timeWaitN connections per mode in the TIME_WAIT phase
 * @param {number} [o.serverPid] for the server's CPU (with its children)
 * @param {(m: string) => void} o.log
 */
export async function churnAB({ kind, rounds, n, inFlight, target, timeWaitTargets, timeWaitN, serverPid, log }) {
  const worker = forkWorker()
  try {
    const batch = async (mode, t = target, count = n) => {
      const cpu0 = serverPid ? processCpuSeconds(serverPid, { tree: true }) : Number.NaN
      const t0 = process.hrtime.bigint()
      const r = await worker.request({ cmd: 'run', kind, mode, n: count, inFlight, target: t })
      const wall = Number(process.hrtime.bigint() - t0) / 1e9
      const serverCpu = serverPid ? (processCpuSeconds(serverPid, { tree: true }) - cpu0) / wall : null
      if (r.failed > 0) log(`  ${kind} ${mode}: ${r.failed} of ${count} failed: ${JSON.stringify(r.errors)}`)
      return { ...r, serverCpu }
    }
    // A full batch of each side first: the recycled path has more code to compile (core, koffi),
    // and a short warm-up showed as a recycled slowdown in the first rounds.
    const warm = n
    log(`${kind}: ${rounds} rounds of ${n} connections per side, ${inFlight} in flight (warm-up ${warm} each)`)
    const results = await interleave({
      rounds,
      arms: [
        { name: 'plain', run: () => batch('plain'), warmup: async () => void (await batch('plain', target, warm)) },
        { name: 'recycled', run: () => batch('recycled'), warmup: async () => void (await batch('recycled', target, warm)) },
      ],
      onRound: (r, arm, res) =>
        log(`  round ${r + 1} ${arm.padEnd(8)} ${Math.round(res.perSecond)}/s  cpu ${res.cpuPerConnUs.toFixed(0)} µs/conn  p99 ${(res.latencyUs.p99 / 1000).toFixed(2)} ms${res.serverCpu === null ? '' : `  server ${(res.serverCpu * 100).toFixed(0)}%`}`),
    })
    const arms = {}
    for (const [name, list] of Object.entries(results)) {
      arms[name] = {
        perSecond: field(list, 'perSecond'),
        cpuPerConnUs: field(list, 'cpuPerConnUs'),
        userPerConnUs: field(list, (r) => r.cpuUserUs / r.n),
        sysPerConnUs: field(list, (r) => r.cpuSysUs / r.n),
        p50Us: field(list, (r) => r.latencyUs.p50),
        p99Us: field(list, (r) => r.latencyUs.p99),
        serverCpu: field(list, 'serverCpu'),
        maxRssMB: field(list, 'maxRssMB'),
        fds: field(list, 'fds'),
        failed: list.reduce((s, r) => s + r.failed, 0),
        errors: Object.assign({}, ...list.map((r) => r.errors)),
      }
    }
    const timeWait = { n: timeWaitN }
    for (const mode of ['plain', 'recycled']) {
      const t = timeWaitTargets[mode]
      const r = await batch(mode, t, timeWaitN)
      timeWait[mode] = timeWaitTowards(t.host, t.port)
      timeWait[`${mode}Failed`] = r.failed
    }
    log(`${kind}: client TIME_WAIT after ${timeWaitN} connections: plain ${timeWait.plain}, recycled ${timeWait.recycled}`)
    const stats = await worker.request({ cmd: 'stats' })
    return {
      arms,
      ratios: {
        recycledVsPlain: pairRatio(results.recycled, results.plain),
        cpuPerConnRecycledVsPlain: pairRatio(results.recycled, results.plain, 'cpuPerConnUs'),
        p99RecycledVsPlain: pairRatio(results.recycled, results.plain, (r) => r.latencyUs.p99),
      },
      timeWait,
      recyclerStats: stats.stats,
      rounds: results,
    }
  } finally {
    await worker.close()
  }
}

/** The summary row and per-scenario detail lines of a churnAB result. */
export function churnRow(label, res, tgt) {
  return {
    scenario: label,
    unit: 'conn/s',
    plain: res.arms.plain.perSecond.median,
    recycled: res.arms.recycled.perSecond.median,
    ratio: res.ratios.recycledVsPlain,
    timeWait: res.timeWait,
    target: tgt,
  }
}

export function churnDetails(res) {
  const f = (s, d = 1) => (s.median === null ? 'n/a' : s.median.toFixed(d))
  const a = res.arms
  const lines = [
    '| | plain | recycled |',
    '|---|---:|---:|',
    `| connections/s (median) | ${f(a.plain.perSecond, 0)} | ${f(a.recycled.perSecond, 0)} |`,
    `| client CPU per connection, µs | ${f(a.plain.cpuPerConnUs)} | ${f(a.recycled.cpuPerConnUs)} |`,
    `| of which user / kernel, µs | ${f(a.plain.userPerConnUs)} / ${f(a.plain.sysPerConnUs)} | ${f(a.recycled.userPerConnUs)} / ${f(a.recycled.sysPerConnUs)} |`,
    `| latency p50 / p99, ms | ${(a.plain.p50Us.median / 1000).toFixed(2)} / ${(a.plain.p99Us.median / 1000).toFixed(2)} | ${(a.recycled.p50Us.median / 1000).toFixed(2)} / ${(a.recycled.p99Us.median / 1000).toFixed(2)} |`,
    `| server CPU (share of one core) | ${a.plain.serverCpu.median === null ? 'n/a' : `${Math.round(a.plain.serverCpu.median * 100)}%`} | ${a.recycled.serverCpu.median === null ? 'n/a' : `${Math.round(a.recycled.serverCpu.median * 100)}%`} |`,
    `| client max RSS, MB / open fds after a batch | ${f(a.plain.maxRssMB, 0)} / ${f(a.plain.fds, 0)} | ${f(a.recycled.maxRssMB, 0)} / ${f(a.recycled.fds, 0)} |`,
    `| failed connections | ${a.plain.failed} | ${a.recycled.failed} |`,
    `| client TIME_WAIT after ${res.timeWait.n} connections | ${res.timeWait.plain ?? 'n/a'} | ${res.timeWait.recycled ?? 'n/a'} |`,
  ]
  const s = res.recyclerStats
  if (s) lines.push('', `Recycler over the whole scenario: ${s.connections} connections on ${s.fdsCreated} fds (${s.reusedConnections} on a reused fd), peer closed first ${s.peerClosedFirst}, our FIN first ${s.finSentFirst}, resets ${s.resetsSent}, drain timeouts ${s.drainTimeouts}.`)
  return lines
}

/**
 * Notes for a churn result: where the throughput target is missed, what was measured beside it
 * (client CPU per connection of each side, the server's CPU, whether the rounds straddle parity).
 */
export function churnNotes(what, res, throughputTarget) {
  const notes = []
  const a = res.arms
  const r = res.ratios.recycledVsPlain
  const cpuP = a.plain.cpuPerConnUs.median
  const cpuR = a.recycled.cpuPerConnUs.median
  const srv = a.plain.serverCpu.median
  const split = (arm) => `${a[arm].userPerConnUs.median?.toFixed(0)} user + ${a[arm].sysPerConnUs.median?.toFixed(0)} kernel`
  const cpu = `client CPU per connection ${cpuP?.toFixed(0)} µs plain (${split('plain')}), ${cpuR?.toFixed(0)} µs recycled (${split('recycled')}; ${cpuR > cpuP ? '+' : ''}${(((cpuR - cpuP) / cpuP) * 100).toFixed(0)}%)` +
    (srv === null ? '' : `; the server used ${Math.round(srv * 100)}% of a core during plain batches`)
  if (throughputTarget.met === false) {
    const straddle = r.max >= 1 ? `per-round ratios ${r.min}–${r.max} straddle parity` : `below parity in every round (${r.min}–${r.max})`
    notes.push(`recycled / plain ${r.median} in the median, ${straddle}; ${cpu}.`)
  } else {
    notes.push(`${cpu[0].toUpperCase()}${cpu.slice(1)}.`)
  }
  return notes
}
