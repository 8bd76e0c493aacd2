// Scenarios 1 and 2: raw TCP churn (connect, read the greeting to the server's EOF, close) against
// the C greet-server in its own process, Node plain vs Node recycled, with the C client loop
// (plain close vs shutdown + AF_UNSPEC reuse) interleaved in the same rounds as the machine's
// ceiling. 1 and 16 connections in flight.
import { field, interleave, pairRatio, target } from '../lib/ab.mjs'
import { compileNative, forkWorker, runJson, startLineServer } from '../lib/procs.mjs'
import { timeWaitTowards } from '../lib/system.mjs'

export const name = 'tcp'
export const title = 'Raw TCP churn (connect, read to EOF, close), with the C ceiling'

const HOST = '127.0.0.1'

export async function run({ quick, rounds, log }) {
  const greet = compileNative('greet-server')
  const cClient = compileNative('churn-client')
  const server = await startLineServer(greet, [], { name: 'greet-server' })
  const port = server.ports[0]
  const worker = forkWorker()
  const sizes = quick ? { 1: 2000, 16: 5000 } : { 1: 8000, 16: 20000 }
  const out = { params: { rounds, connectionsPerRound: sizes, server: 'bench/native/greet-server.c (C, own process, 1 thread)', host: HOST }, byInFlight: {} }
  try {
    for (const inFlight of [1, 16]) {
      const n = sizes[inFlight]
      const node = (mode) => () => measured(server, () => worker.request({ cmd: 'run', kind: 'tcp', mode, n, inFlight, target: { host: HOST, port } }))
      const c = (mode, loop = 'threads') => () =>
        measured(server, async () => {
          const r = await runJson(cClient, [String(port), mode, String(n), String(inFlight), loop], { name: 'churn-client' })
          return { ...r, failed: r.failures, cpuPerConnUs: ((r.cpuUserSec + r.cpuSysSec) * 1e6) / n }
        })
      log(`tcp: ${inFlight} in flight, ${rounds} rounds of ${n} connections per arm`)
      const results = await interleave({
        rounds,
        arms: [
          { name: 'nodePlain', run: node('plain'), warmup: async () => void (await node('plain')()) },
          { name: 'nodeRecycled', run: node('recycled'), warmup: async () => void (await node('recycled')()) },
          { name: 'cPlain', run: c('plain') },
          { name: 'cRecycle', run: c('recycle') },
          // With 16 in flight the threaded C loop uses every core; the epoll loop is one thread, as Node.
          ...(inFlight > 1 ? [{ name: 'cEpollPlain', run: c('plain', 'epoll') }, { name: 'cEpollRecycle', run: c('recycle', 'epoll') }] : []),
        ],
        onRound: (r, arm, res) => log(`  round ${r + 1} ${arm.padEnd(12)} ${Math.round(res.perSecond)}/s  cpu ${res.cpuPerConnUs.toFixed(1)} µs/conn  server ${(res.serverCpu * 100).toFixed(0)}%`),
      })
      const arms = {}
      for (const [armName, list] of Object.entries(results)) {
        arms[armName] = {
          perSecond: field(list, 'perSecond'),
          cpuPerConnUs: field(list, 'cpuPerConnUs'),
          serverCpu: field(list, 'serverCpu'),
          failed: list.reduce((s, r) => s + (r.failed ?? 0), 0),
          ...(armName.startsWith('node') ? { p99Us: field(list, (r) => r.latencyUs.p99), maxRssMB: field(list, 'maxRssMB'), fds: field(list, 'fds') } : {}),
        }
      }
      out.byInFlight[inFlight] = {
        n,
        arms,
        ratios: {
          recycledVsPlain: pairRatio(results.nodeRecycled, results.nodePlain),
          cRecycleVsCPlain: pairRatio(results.cRecycle, results.cPlain),
          recycledVsCRecycle: pairRatio(results.nodeRecycled, results.cRecycle),
          ...(results.cEpollRecycle ? {
            cEpollRecycleVsPlain: pairRatio(results.cEpollRecycle, results.cEpollPlain),
            recycledVsCEpollRecycle: pairRatio(results.nodeRecycled, results.cEpollRecycle),
          } : {}),
          plainVsCPlain: pairRatio(results.nodePlain, results.cPlain),
          cpuPerConnRecycledVsPlain: pairRatio(results.nodeRecycled, results.nodePlain, 'cpuPerConnUs'),
        },
        rounds: results,
        recyclerStats: results.nodeRecycled.at(-1)?.recycler ?? null,
      }
    }
    out.timeWait = await timeWaitPhase(worker, quick ? 1000 : 2000, greet, log)
  } finally {
    await worker.close()
    server.stop()
  }

  const at16 = out.byInFlight[16]
  const at1 = out.byInFlight[1]
  out.targets = [
    target('recycled / plain Node conn/s, 16 in flight', at16.ratios.recycledVsPlain.median, '>=', 1.15, { goal: 1.25 }),
    target('recycled Node / C recycle loop conn/s (16 threads), 16 in flight', at16.ratios.recycledVsCRecycle.median, '>=', 0.7),
    target('recycled Node / C recycle loop conn/s (1 thread, epoll), 16 in flight', at16.ratios.recycledVsCEpollRecycle.median, '>=', 0.7),
  ]
  out.notes = notes(out)
  out.details = details(out)
  out.rows = [
    row('TCP churn, 1 in flight', at1, out.timeWait),
    row('TCP churn, 16 in flight', at16, out.timeWait, out.targets[0]),
    {
      scenario: 'C client loop, 16 threads, 16 in flight',
      unit: 'conn/s',
      plain: at16.arms.cPlain.perSecond.median,
      recycled: at16.arms.cRecycle.perSecond.median,
      ratio: at16.ratios.cRecycleVsCPlain,
      target: null,
    },
    {
      scenario: 'C client loop, 1 thread (epoll), 16 in flight',
      unit: 'conn/s',
      plain: at16.arms.cEpollPlain.perSecond.median,
      recycled: at16.arms.cEpollRecycle.perSecond.median,
      ratio: at16.ratios.cEpollRecycleVsPlain,
      target: null,
    },
    vsC('Node recycled vs C recycle, 16 threads', at16.arms.cRecycle, at16, at16.ratios.recycledVsCRecycle, out.targets[1]),
    vsC('Node recycled vs C recycle, 1 thread (epoll)', at16.arms.cEpollRecycle, at16, at16.ratios.recycledVsCEpollRecycle, out.targets[2]),
  ]
  return out
}

function vsC(label, cArm, r, ratio, tgt) {
  const rate = (x) => Math.round(x).toLocaleString('en-US')
  return {
    scenario: label,
    plainText: `C: ${rate(cArm.perSecond.median)} conn/s`,
    recycledText: `Node: ${rate(r.arms.nodeRecycled.perSecond.median)} conn/s`,
    ratio,
    extra: 'Node recycled / C recycle',
    target: tgt,
  }
}

function row(label, r, tw, tgt) {
  return {
    scenario: label,
    unit: 'conn/s',
    plain: r.arms.nodePlain.perSecond.median,
    recycled: r.arms.nodeRecycled.perSecond.median,
    ratio: r.ratios.recycledVsPlain,
    cpu: { plain: r.arms.nodePlain.cpuPerConnUs.median, recycled: r.arms.nodeRecycled.cpuPerConnUs.median },
    timeWait: tw,
    target: tgt ?? null,
  }
}

/** Runs `fn` and adds the server's CPU share (of one core) over the batch to its result. */
async function measured(server, fn) {
  const cpu0 = server.cpuSeconds()
  const t0 = process.hrtime.bigint()
  const r = await fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  return { ...r, serverCpu: (server.cpuSeconds() - cpu0) / wall }
}

/** N connections per mode, each mode to its own fresh server, then `ss` on each server port. */
async function timeWaitPhase(worker, n, greet, log) {
  const res = { n }
  for (const mode of ['plain', 'recycled']) {
    const s = await startLineServer(greet, [], { name: `greet-server (TIME_WAIT ${mode})` })
    try {
      const r = await worker.request({ cmd: 'run', kind: 'tcp', mode, n, inFlight: 16, target: { host: HOST, port: s.ports[0] } })
      res[mode] = timeWaitTowards(HOST, s.ports[0])
      res[`${mode}Failed`] = r.failed
    } finally {
      s.stop()
    }
  }
  log(`tcp: client TIME_WAIT after ${n} connections: plain ${res.plain}, recycled ${res.recycled}`)
  return res
}

function notes(out) {
  const n = []
  const at16 = out.byInFlight[16]
  const a = at16.arms
  const cores = (arm) => (arm.perSecond.median * arm.cpuPerConnUs.median) / 1e6
  const us = (arm) => arm.cpuPerConnUs.median?.toFixed(1)
  n.push(`Client CPU per connection, 16 in flight (median, user+sys): Node plain ${us(a.nodePlain)} µs, Node recycled ${us(a.nodeRecycled)} µs, C recycle ${us(a.cRecycle)} µs (16 threads), C recycle ${us(a.cEpollRecycle)} µs (1 thread, epoll).`)
  n.push(`Client cores busy: Node recycled ${cores(a.nodeRecycled).toFixed(2)} (one thread), C recycle with 16 threads ${cores(a.cRecycle).toFixed(2)}, C recycle with epoll ${cores(a.cEpollRecycle).toFixed(2)}; the C server ${Math.round((a.nodeRecycled.serverCpu.median ?? 0) * 100)}% of a core during Node recycled batches, ${Math.round((a.cRecycle.serverCpu.median ?? 0) * 100)}% during C recycle batches.`)
  for (const t of out.targets.slice(1)) {
    if (t.met !== false) continue
    const c = t.name.includes('epoll') ? a.cEpollRecycle : a.cRecycle
    n.push(`${t.name}: ${t.value?.toFixed(2)}x. Measured cause: Node spends ${us(a.nodeRecycled)} µs of CPU per connection against C's ${us(c)} µs (${(a.nodeRecycled.cpuPerConnUs.median / c.cpuPerConnUs.median).toFixed(1)}x: JS socket objects, streams and event-loop turns on top of the same syscalls)${t.name.includes('threads') ? ', and the threaded C loop spreads its work over every core while Node runs on one' : ''}. Recycling removes the socket(2)/close(2) part of Node's cost, not the runtime's.`)
  }
  if ((a.cRecycle.serverCpu.median ?? 0) > 0.85) {
    n.push(`The C loops keep the single-threaded C server ${Math.round(a.cRecycle.serverCpu.median * 100)}% busy: there the ceiling is the server's.`)
  }
  return n
}

function details(out) {
  const lines = []
  for (const [inFlight, r] of Object.entries(out.byInFlight)) {
    const threads = `${inFlight} thread${inFlight === '1' ? '' : 's'}`
    const names = { nodePlain: 'Node plain', nodeRecycled: 'Node recycled', cPlain: `C plain, ${threads}`, cRecycle: `C recycle, ${threads}`, cEpollPlain: 'C plain, 1 thread, epoll', cEpollRecycle: 'C recycle, 1 thread, epoll' }
    lines.push(`**${inFlight} in flight**, ${r.n} connections per batch:`, '')
    lines.push('| arm | conn/s median (min–max) | client CPU µs/conn | server CPU | client p99 latency | client max RSS / fds |', '|---|---|---:|---:|---:|---:|')
    for (const [arm, a] of Object.entries(r.arms)) {
      const pct = a.serverCpu.median === null ? 'n/a' : `${Math.round(a.serverCpu.median * 100)}%`
      const p99 = a.p99Us ? `${(a.p99Us.median / 1000).toFixed(2)} ms` : ''
      const mem = a.maxRssMB ? `${a.maxRssMB.median} MB / ${a.fds.median}` : ''
      lines.push(`| ${names[arm] ?? arm} | ${Math.round(a.perSecond.median)} (${Math.round(a.perSecond.min)}–${Math.round(a.perSecond.max)}) | ${a.cpuPerConnUs.median} | ${pct} | ${p99} | ${mem} |`)
    }
    lines.push('')
  }
  const s = out.byInFlight[16].recyclerStats
  if (s) lines.push(`Recycler, last 16-in-flight batch: ${s.connections} connections, ${s.fdsCreated} new fds, ${s.reusedConnections} on a reused fd, peer closed first ${s.peerClosedFirst}, our FIN first ${s.finSentFirst}.`)
  return lines
}
