#!/usr/bin/env node
// Where the demo's client spends its CPU, plain vs recycled: the demo's backends
// (examples/demo/backends.mjs, 32 line and 32 HTTP per mode, each on an address of its own) and
// the demo's own client code (examples/demo/churn.mjs) in a fresh process per run
// (bench/clients/demo-worker.mjs), arms alternating. Prints CPU µs per connection (user, system)
// per run and their medians; with --profile, the self time per function in µs per connection,
// side by side; with --perf, Linux perf's CPU samples of the measured batch by bucket (kernel per
// syscall, user time under core frames, other JS, V8's compiler threads...) in µs per connection;
// with --strace, syscalls per connection (differential: n and 3n connections).
//
//   node bench/demo-profile.mjs                          # both protocols, as the demo mixes them
//   node bench/demo-profile.mjs --workload line --profile
//   node bench/demo-profile.mjs --workload http --strace
//
// Needs the packages built (npm run build).
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCli } from './lib/cli.mjs'
import { selfTimes } from './lib/cpuprofile.mjs'
import { buckets, PERF_HZ, perfAvailable, perfRecord } from './lib/perf-buckets.mjs'
import { BENCH_DIR, runJson } from './lib/procs.mjs'
import { median } from './lib/stats.mjs'
import { syscallsPerConnection } from './lib/strace.mjs'

const USAGE = `usage: node bench/demo-profile.mjs [options]
  --workload <w>    both (default: line and HTTP alternating, as the demo), line, http
  --n <n>           measured connections per run (default 4000)
  --warmup <n>      connections before the measured batch (default 12000: V8 compiles for thousands)
  --in-flight <n>   concurrent connections (default 16, as the demo)
  --repeat <n>      runs per arm, alternating (default 5)
  --profile         also take V8 CPU profiles (100 µs) and print self time per function
  --top <n>         rows per profile table (default 20)
  --node-flag <f>   a flag for the worker's node (repeatable), e.g. --node-flag=--max-semi-space-size=16
  --recycler <json> options for the recycled arm's SocketRecycler, e.g. '{"releasePolicy":"fixed"}'
  --backends <n>    backends per protocol and mode the client cycles through (default 32, as the demo)
  --perf            also record each run with Linux perf (cpu-clock, only the measured batch) and
                    print its CPU time by bucket, µs per connection (needs perf and permission)
  --strace          syscalls per connection instead (strace -f -c, n and 3n)`

const { args, int } = parseCli({
  workload: { type: 'string', default: 'both' },
  n: { type: 'string', default: '4000' },
  warmup: { type: 'string', default: '12000' },
  'in-flight': { type: 'string', default: '16' },
  repeat: { type: 'string', default: '5' },
  profile: { type: 'boolean', default: false },
  top: { type: 'string', default: '20' },
  strace: { type: 'boolean', default: false },
  perf: { type: 'boolean', default: false },
  backends: { type: 'string', default: '32' },
  recycler: { type: 'string', default: '{}' },
  'node-flag': { type: 'string', multiple: true, default: [] },
}, USAGE)
const n = int('n', 1)
const warmup = int('warmup', 0)
const inFlight = int('in-flight', 1)
const repeat = int('repeat', 1)
const top = int('top', 1)
const spread = int('backends', 1)
if (!['both', 'line', 'http'].includes(args.workload)) {
  process.stderr.write(`--workload must be both, line or http\n${USAGE}\n`)
  process.exit(2)
}
if (args.perf) {
  const p = perfAvailable()
  if (!p.ok) {
    process.stderr.write(`--perf: ${p.reason}\n`)
    process.exit(2)
  }
}
const log = (m) => process.stderr.write(`[demo-profile] ${m}\n`)

const BACKENDS = 32
const net24 = `127.${64 + Math.floor(Math.random() * 160)}.${Math.floor(Math.random() * 256)}`
const hosts = (from) => Array.from({ length: 2 * BACKENDS }, (_, i) => `${net24}.${from + i}`)
const children = []
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})
async function backends(kind, list) {
  const child = fork(join(BENCH_DIR, '..', 'examples', 'demo', 'backends.mjs'), [kind, list.join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const [msg] = await once(child, 'message')
  return msg.listeners
}
const [line, http] = await Promise.all([backends('line', hosts(1)), backends('http', hosts(65))])
const targetsOf = (k) => ({
  line: args.workload === 'http' ? [] : line.slice(k * BACKENDS, k * BACKENDS + Math.min(spread, BACKENDS)),
  http: args.workload === 'line' ? [] : http.slice(k * BACKENDS, k * BACKENDS + Math.min(spread, BACKENDS)),
})
const targets = { plain: targetsOf(0), recycled: targetsOf(1) }
const worker = join(BENCH_DIR, 'clients', 'demo-worker.mjs')
const out = []
out.push(`demo client, ${args.workload}, ${Math.min(spread, BACKENDS)} backend(s) per protocol, ${n} connections per run (warm-up ${warmup}), ${inFlight} in flight, backends on ${net24}.x`)

if (args.strace) {
  for (const mode of ['plain', 'recycled']) {
    const make = (count) => [process.execPath, [worker, JSON.stringify({ mode, targets: targets[mode], n: count, warmup: 0, inFlight })]]
    const r = await syscallsPerConnection(make, n, 3 * n)
    out.push(`${mode}: ${r.perConnection.toFixed(2)} syscalls/conn  ${Object.entries(r.bySyscall).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  }
} else {
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-demo-profile-'))
  const runs = { plain: [], recycled: [] }
  try {
    for (let r = 0; r < repeat; r++) {
      for (const mode of r % 2 === 0 ? ['plain', 'recycled'] : ['recycled', 'plain']) {
        const file = args.profile ? join(dir, `${mode}-${r}.cpuprofile`) : undefined
        const msg = { mode, targets: targets[mode], n, warmup, inFlight, profile: file, recyclerOptions: JSON.parse(args.recycler) }
        let res
        let perfCounts = null
        if (args.perf) {
          const rec = await perfRecord(dir, `${mode}-${r}`, [...args['node-flag'], worker], (a, fifo) => [...a, JSON.stringify({ ...msg, perfControl: fifo })])
          res = rec.result
          perfCounts = buckets(rec.data).counts
          rmSync(rec.data, { force: true })
          rmSync(join(tmpdir(), `perf-${res.pid}.map`), { force: true }) // --perf-basic-prof's symbol map
        } else {
          res = await runJson(process.execPath, [...args['node-flag'], worker, JSON.stringify(msg)], { name: `demo-worker ${mode}` })
        }
        if (res.failed > 0) log(`  ${mode}: ${res.failed} of ${n} failed: ${JSON.stringify(res.errors)}`)
        const run = { perf: perfCounts, gc: res.gc, user: res.cpuUserUs / n, sys: res.cpuSystemUs / n, perSecond: n / res.seconds, ...(file ? selfTimes(JSON.parse(readFileSync(file, 'utf8'))) : {}) }
        runs[mode].push(run)
        log(`  run ${r + 1} ${mode.padEnd(8)} ${Math.round(run.perSecond)}/s  cpu user ${run.user.toFixed(1)} + sys ${run.sys.toFixed(1)} = ${(run.user + run.sys).toFixed(1)} µs/conn  gc ${res.gc.count} (${res.gc.major} major) ${res.gc.ms.toFixed(0)} ms, heap ${res.gc.heapUsedMB} MB, threads (ticks u/s) ${Object.entries(res.threads).map(([k, t]) => `${k} ${t.user}/${t.sys}`).join(' ')}${res.stats ? `  (reused ${res.stats.reusedConnections}, fds ${res.stats.fdsCreated})` : ''}`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const med = (mode, f) => median(runs[mode].map(f)).toFixed(1)
  for (const mode of ['plain', 'recycled']) out.push(`${mode.padEnd(8)} median µs/conn: user ${med(mode, (x) => x.user)}  sys ${med(mode, (x) => x.sys)}  total ${med(mode, (x) => x.user + x.sys)}  (${med(mode, (x) => x.perSecond)}/s)`)
  const ratios = runs.recycled.map((x, i) => (x.user + x.sys) / (runs.plain[i].user + runs.plain[i].sys))
  out.push(`recycled/plain CPU per connection: median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`)
  if (args.perf) {
    const us = (count) => (count / PERF_HZ) * 1e6 / n
    const keys = [...new Set(['plain', 'recycled'].flatMap((m) => runs[m].flatMap((x) => [...x.perf.keys()])))]
    const med = (mode, k) => median(runs[mode].map((x) => us(x.perf.get(k) ?? 0)))
    const rows = keys.map((k) => ({ k, a: med('plain', k), b: med('recycled', k) })).sort((x, y) => y.b - y.a - (x.b - x.a))
    const total = (mode) => median(runs[mode].map((x) => us([...x.perf.values()].reduce((t, v) => t + v, 0))))
    out.push(`\nperf (cpu-clock, ${PERF_HZ} Hz, measured batch only), median per bucket\n${'plain'.padStart(8)} ${'recycled'.padStart(9)} ${'diff'.padStart(7)}  (µs per connection)`)
    for (const e of rows) out.push(`${e.a.toFixed(1).padStart(8)} ${e.b.toFixed(1).padStart(9)} ${`${e.b - e.a >= 0 ? '+' : ''}${(e.b - e.a).toFixed(1)}`.padStart(7)}  ${e.k}`)
    out.push(`${total('plain').toFixed(1).padStart(8)} ${total('recycled').toFixed(1).padStart(9)} ${''.padStart(7)}  all samples (median of the runs' totals)`)
  }
  if (args.profile) {
    const perConn = (list, pick) => {
      const keys = new Set(list.flatMap((x) => [...pick(x).keys()]))
      return new Map([...keys].map((k) => [k, median(list.map((x) => (pick(x).get(k) ?? 0) / n))]))
    }
    const table = (title, sort, pick = (x) => x.fns) => {
      const p = perConn(runs.plain, pick)
      const q = perConn(runs.recycled, pick)
      const rows = [...new Set([...p.keys(), ...q.keys()])].filter((k) => k !== '(idle)').map((k) => ({ k, a: p.get(k) ?? 0, b: q.get(k) ?? 0 }))
      out.push(`\n${title}\n${'plain'.padStart(8)} ${'recycled'.padStart(9)} ${'diff'.padStart(7)}  (µs per connection, self time, profiler on)`)
      for (const e of [...rows].sort(sort).slice(0, top)) out.push(`${e.a.toFixed(2).padStart(8)} ${e.b.toFixed(2).padStart(9)} ${`${e.b - e.a >= 0 ? '+' : ''}${(e.b - e.a).toFixed(2)}`.padStart(7)}  ${e.k}`)
    }
    const nonIdle = (x) => [...x.fns].reduce((t, [k, v]) => (k === '(idle)' ? t : t + v), 0) / n
    out.push(`\nJS thread, profiled non-idle µs/conn (wall-clock weighted): plain ${median(runs.plain.map(nonIdle)).toFixed(1)}, recycled ${median(runs.recycled.map(nonIdle)).toFixed(1)}`)
    table(`By file (top ${top} by the larger arm)`, (x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b), (x) => x.files)
    table(`By function (top ${top} by the larger arm)`, (x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b))
    table(`Recycled costs more (top ${top})`, (x, y) => y.b - y.a - (x.b - x.a))
  }
}
process.stdout.write(`${out.join('\n')}\n`)
process.exit(0)
