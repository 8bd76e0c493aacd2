// Scenario: a service fanning out to many backends. 64 loopback destinations per mode (addresses
// 127.0.10.1–64 for plain, 127.0.11.1–64 for recycled, one port), half goodbye backends (the
// client says goodbye and ends at once: pg, Redis, SMTP) and half HTTP backends answering
// `Connection: close`; each request a new connection, 32 in flight, for --duration seconds (60).
// Plain and recycled run at the same time, in two client processes, each against its own 64
// destinations, so that both meet the same machine load and each one's TIME_WAIT is its own.
// Every second: client TIME_WAIT, local ports in use (client sockets towards the mode's
// destinations, in any state, TIME_WAIT included) and the client's open fds.
import { execFileSync, spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { target } from '../lib/ab.mjs'
import { requireAdapter } from '../lib/adapters.mjs'
import { onCleanup } from '../lib/cleanup.mjs'
import { BENCH_DIR, processCpuSeconds, startLineServer, stopPid } from '../lib/procs.mjs'
import { SkipError } from '../lib/servers.mjs'
import { hasCommand } from '../lib/system.mjs'

export const name = 'fanout'
export const title = 'Fanout: 64 backends (goodbye and HTTP Connection: close), 32 in flight, over time'

const DESTINATIONS = 64
const IN_FLIGHT = 32
const NETS = { plain: '127.0.10', recycled: '127.0.11' }

/** One `ss` call: per mode, client TIME_WAIT and local ports in use towards its destinations. */
function sample() {
  const out = execFileSync('ss', ['-Htan', `( dst ${NETS.plain}.0/24 or dst ${NETS.recycled}.0/24 )`], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
  const counts = { plain: { timeWait: 0, portsInUse: 0 }, recycled: { timeWait: 0, portsInUse: 0 } }
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 5) continue
    const peer = f[4]
    const mode = peer.startsWith(`${NETS.plain}.`) ? 'plain' : peer.startsWith(`${NETS.recycled}.`) ? 'recycled' : null
    if (!mode) continue
    counts[mode].portsInUse++
    if (f[0] === 'TIME-WAIT') counts[mode].timeWait++
  }
  return counts
}

function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return null
  }
}

function startWorker(mode, destinations, durationMs) {
  const msg = { mode, destinations, inFlight: IN_FLIGHT, durationMs }
  const child = spawn(process.execPath, [join(BENCH_DIR, 'clients', 'fanout-worker.mjs'), JSON.stringify(msg)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const stop = onCleanup(`fanout worker ${mode} (pid ${child.pid})`, () => stopPid(child.pid))
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise((resolve, reject) => {
    child.on('close', (code, signal) => {
      stop()
      const line = stdout.trim().split('\n').pop()
      if (code === 0 && line?.startsWith('{')) resolve(JSON.parse(line))
      else reject(new Error(`fanout worker ${mode} failed (${code ?? signal}): ${stderr.trim().slice(-600)}`))
    })
  })
  return { pid: child.pid, done }
}

export async function run({ quick, duration, log }) {
  await requireAdapter('@fdrecycle/http-adapter', ['RecycledAgent'])
  if (!hasCommand('ss', ['-V'])) throw new SkipError('ss is not installed (apt-get install iproute2)')
  const seconds = duration ?? (quick ? 15 : 60)
  const hosts = {}
  for (const mode of ['plain', 'recycled']) hosts[mode] = Array.from({ length: DESTINATIONS }, (_, i) => `${NETS[mode]}.${i + 1}`)
  const server = await startLineServer(process.execPath, [join(BENCH_DIR, 'clients', 'fanout-server.mjs'), ...hosts.plain, ...hosts.recycled], { name: 'fanout-server' })
  const port = server.ports[0]
  log(`fanout: ${DESTINATIONS} backends per mode on ${NETS.plain}.1–${DESTINATIONS} (plain) and ${NETS.recycled}.1–${DESTINATIONS} (recycled), port ${port}, server pid ${server.pid}; ${seconds} s, ${IN_FLIGHT} in flight, both modes at once`)
  try {
    const destinations = (mode) => hosts[mode].map((host, i) => ({ host, port, kind: i % 2 === 0 ? 'goodbye' : 'http' }))
    const before = sample()
    const cpu0 = processCpuSeconds(server.pid)
    const t0 = performance.now()
    const workers = { plain: startWorker('plain', destinations('plain'), seconds * 1000), recycled: startWorker('recycled', destinations('recycled'), seconds * 1000) }
    const series = { plain: [], recycled: [] }
    let finished = 0
    const all = Promise.all([workers.plain.done, workers.recycled.done]).finally(() => (finished = 1))
    while (!finished) {
      await new Promise((resolve) => setTimeout(resolve, 1000)) // the sampling period
      if (finished) break
      const t = Math.round((performance.now() - t0) / 100) / 10
      const s = sample()
      for (const mode of ['plain', 'recycled']) {
        series[mode].push({ t, timeWait: s[mode].timeWait, portsInUse: s[mode].portsInUse, fds: fdCount(workers[mode].pid) })
      }
      if (series.plain.length % 10 === 0) log(`  ${t.toFixed(0)} s: TIME_WAIT plain ${s.plain.timeWait} / recycled ${s.recycled.timeWait}; ports in use ${s.plain.portsInUse} / ${s.recycled.portsInUse}; fds ${series.plain.at(-1).fds} / ${series.recycled.at(-1).fds}`)
    }
    const [plain, recycled] = await all
    const serverCpu = (processCpuSeconds(server.pid) - cpu0) / ((performance.now() - t0) / 1000)
    const peak = (mode, key) => Math.max(0, ...series[mode].map((p) => p[key] ?? 0))
    const arms = { plain, recycled }
    for (const mode of ['plain', 'recycled']) {
      const a = arms[mode]
      log(`fanout ${mode}: ${a.completed} connections (${Math.round(a.perSecond)}/s), ${a.failed} failed ${JSON.stringify(a.errors)}, cpu ${a.cpuPerConnUs.toFixed(0)} µs/conn; peak TIME_WAIT ${peak(mode, 'timeWait')}, ports ${peak(mode, 'portsInUse')}, fds ${peak(mode, 'fds')}`)
    }
    const ratio = recycled.perSecond / plain.perSecond
    const r3 = (x) => Math.round(x * 1000) / 1000
    const targets = [
      target('fanout: client TIME_WAIT, recycled (peak)', peak('recycled', 'timeWait'), '==', 0, { unit: 'count' }),
      target('fanout: failed connections, recycled', recycled.failed, '==', 0, { unit: 'count' }),
    ]
    const s = recycled.recycler
    return {
      params: { seconds, destinationsPerMode: DESTINATIONS, inFlight: IN_FLIGHT, port, mix: 'even addresses goodbye-then-end, odd HTTP Connection: close', concurrent: true },
      arms: { plain, recycled },
      before,
      series,
      serverCpu,
      targets,
      notes: [
        `Both modes ran at once for ${seconds} s (two client processes, one server process), so their rates share the machine; the ratio is of one run, not a median of interleaved rounds.`,
        `Peaks over the run, plain / recycled: client TIME_WAIT ${peak('plain', 'timeWait')} / ${peak('recycled', 'timeWait')}, local ports in use ${peak('plain', 'portsInUse')} / ${peak('recycled', 'portsInUse')}, client fds ${peak('plain', 'fds')} / ${peak('recycled', 'fds')}.`,
      ],
      rows: [{
        scenario: `Fanout, ${DESTINATIONS} backends, ${IN_FLIGHT} in flight, ${seconds} s (both at once)`,
        unit: 'conn/s',
        plain: plain.perSecond,
        recycled: recycled.perSecond,
        ratio: { median: r3(ratio), min: r3(ratio), max: r3(ratio), n: 1 },
        ratioText: `${ratio.toFixed(2)}x (one concurrent run)`,
        extra: `peak ports in use ${peak('plain', 'portsInUse')} / ${peak('recycled', 'portsInUse')}, peak fds ${peak('plain', 'fds')} / ${peak('recycled', 'fds')}`,
        timeWait: { n: plain.completed, plain: peak('plain', 'timeWait'), recycled: peak('recycled', 'timeWait') },
        target: targets[0],
        chart: false,
      }],
      chartSeries: { title: `Fanout: ${DESTINATIONS} backends, ${IN_FLIGHT} in flight, plain and recycled at once`, series },
      details: [
        '| | plain | recycled |',
        '|---|---:|---:|',
        `| connections (failed) | ${plain.completed} (${plain.failed}) | ${recycled.completed} (${recycled.failed}) |`,
        `| connections/s | ${Math.round(plain.perSecond)} | ${Math.round(recycled.perSecond)} |`,
        `| client CPU per connection, µs | ${plain.cpuPerConnUs.toFixed(1)} | ${recycled.cpuPerConnUs.toFixed(1)} |`,
        `| peak client TIME_WAIT | ${peak('plain', 'timeWait')} | ${peak('recycled', 'timeWait')} |`,
        `| peak local ports in use | ${peak('plain', 'portsInUse')} | ${peak('recycled', 'portsInUse')} |`,
        `| peak client fds | ${peak('plain', 'fds')} | ${peak('recycled', 'fds')} |`,
        '',
        `Server CPU: ${Math.round(serverCpu * 100)}% of a core (both modes). ` +
          (s ? `Recycler: ${s.connections} connections on ${s.fdsCreated} fds (${s.reusedConnections} on a reused fd), peer closed first ${s.peerClosedFirst}, our FIN first ${s.finSentFirst}, resets ${s.resetsSent}, drain timeouts ${s.drainTimeouts}.` : ''),
      ],
    }
  } finally {
    server.stop()
  }
}
