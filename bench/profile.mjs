#!/usr/bin/env node
// Where a connection's CPU goes, plain vs recycled: runs N connections per arm in a fresh child
// process (bench/clients/churn-worker.mjs --once, a warm-up batch first), takes the V8 CPU profile
// of the measured batch alone, and prints the self time per function and per file, in µs per
// connection, side by side, with the biggest differences. Not a throughput figure (the profiler
// slows both arms); a map of where the extra microseconds are.
//
//   node bench/profile.mjs                                  # node:http Connection: close vs a Node server
//   node bench/profile.mjs --kind http --server nginx       # ... vs nginx
//   node bench/profile.mjs --kind tcp                       # raw TCP churn (greet server in C)
//   node bench/profile.mjs --kind goodbye --in-flight 1     # goodbye-then-end (Node goodbye server)
//   node bench/profile.mjs --n 20000 --top 30 --save /tmp/prof   # keep the .cpuprofile files (DevTools)
//
// Needs the packages built (npm run build), as the other benchmarks.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCli } from './lib/cli.mjs'
import { cleanupAll } from './lib/cleanup.mjs'
import { BENCH_DIR, compileNative, runJson, startLineServer } from './lib/procs.mjs'
import { selfTimes } from './lib/cpuprofile.mjs'
import { median } from './lib/stats.mjs'

const USAGE = `usage: node bench/profile.mjs [options]
  --kind <k>        http (default), tcp, goodbye
  --server <s>      for http: node (default) or nginx
  --n <n>           measured connections per arm (default 10000)
  --warmup <n>      connections before the profile starts (default 3000)
  --in-flight <n>   concurrent connections (default 16)
  --repeat <n>      runs per arm, alternating (default 3); the table shows the median per entry
  --interval <us>   sampling interval (default 100)
  --top <n>         rows per table (default 25)
  --save <dir>      keep the .cpuprofile files there`

const { args, int } = parseCli({
  kind: { type: 'string', default: 'http' },
  server: { type: 'string', default: 'node' },
  n: { type: 'string', default: '10000' },
  warmup: { type: 'string', default: '3000' },
  'in-flight': { type: 'string', default: '16' },
  repeat: { type: 'string', default: '3' },
  interval: { type: 'string', default: '100' },
  top: { type: 'string', default: '25' },
  save: { type: 'string' },
}, USAGE)
const n = int('n', 1)
const warmup = int('warmup', 0)
const inFlight = int('in-flight', 1)
const repeat = int('repeat', 1)
const interval = int('interval', 10)
const top = int('top', 1)
if (!['http', 'tcp', 'goodbye'].includes(args.kind)) {
  process.stderr.write(`--kind must be http, tcp or goodbye\n${USAGE}\n`)
  process.exit(2)
}

const log = (m) => process.stderr.write(`[profile] ${m}\n`)

/** The server for the kind, in its own process; returns the worker's target and a stop(). */
async function startServer() {
  if (args.kind === 'tcp') {
    const bin = compileNative('greet-server')
    const srv = await startLineServer(bin, [], { name: 'greet-server' })
    return { target: { host: '127.0.0.1', port: srv.ports[0] }, stop: srv.stop, what: 'greet-server (C)' }
  }
  if (args.kind === 'goodbye') {
    const srv = await startLineServer(process.execPath, [join(BENCH_DIR, 'clients', 'goodbye-server.mjs'), '127.0.0.1', '1'], { name: 'goodbye-server' })
    return { target: { host: '127.0.0.1', port: srv.ports[0], noDelay: true }, stop: srv.stop, what: 'goodbye server (Node)' }
  }
  if (args.server === 'nginx') {
    const { startNginx } = await import('../scripts/nginx.mjs')
    const nginx = await startNginx({ servers: { churn: { keepaliveRequests: 1 } }, workerProcesses: 1 })
    return { target: { host: nginx.host, port: nginx.ports.churn, path: '/hello' }, stop: () => nginx.stop(), what: `nginx ${nginx.version}` }
  }
  const srv = await startLineServer(process.execPath, [join(BENCH_DIR, 'clients', 'http-close-server.mjs'), '127.0.0.1', '1'], { name: 'http-close-server' })
  return { target: { host: '127.0.0.1', port: srv.ports[0], path: '/hello' }, stop: srv.stop, what: 'node:http server' }
}

const dir = args.save ?? mkdtempSync(join(tmpdir(), 'fdrecycle-profile-'))
mkdirSync(dir, { recursive: true })
const server = await startServer()
log(`${args.kind} against ${server.what} on ${server.target.host}:${server.target.port}; ${repeat} run(s) per arm of ${n} connections (warm-up ${warmup}), ${inFlight} in flight, sampling every ${interval} µs`)
const runs = { plain: [], recycled: [] }
try {
  for (let r = 0; r < repeat; r++) {
    const order = r % 2 === 0 ? ['plain', 'recycled'] : ['recycled', 'plain']
    for (const mode of order) {
      const file = join(dir, `${args.kind}-${mode}-${r + 1}.cpuprofile`)
      const msg = { kind: args.kind, mode, n, warmup, inFlight, target: server.target, profile: file, profileIntervalUs: interval }
      const res = await runJson(process.execPath, [join(BENCH_DIR, 'clients', 'churn-worker.mjs'), '--once', JSON.stringify(msg)], { name: `churn-worker ${mode}` })
      if (res.failed > 0) log(`  ${mode}: ${res.failed} of ${n} failed: ${JSON.stringify(res.errors)}`)
      const t = selfTimes(JSON.parse(readFileSync(file, 'utf8')))
      runs[mode].push({ ...t, user: res.cpuUserUs / n, sys: res.cpuSysUs / n, perSecond: res.perSecond })
      log(`  run ${r + 1} ${mode.padEnd(8)} ${Math.round(res.perSecond)}/s (profiled)  cpu user ${(res.cpuUserUs / n).toFixed(1)} + sys ${(res.cpuSysUs / n).toFixed(1)} µs/conn`)
    }
  }
} finally {
  await server.stop()
  if (!args.save) rmSync(dir, { recursive: true, force: true })
}

/** The median over runs of each key's µs per connection (0 where a run lacks the key). */
function perConn(list, pick) {
  const keys = new Set(list.flatMap((x) => [...pick(x).keys()]))
  const out = new Map()
  for (const k of keys) out.set(k, median(list.map((x) => (pick(x).get(k) ?? 0) / n)))
  return out
}

function table(title, pick, rows, sortBy) {
  const p = perConn(runs.plain, pick)
  const q = perConn(runs.recycled, pick)
  const keys = [...new Set([...p.keys(), ...q.keys()])].filter((k) => k !== '(idle)')
  const entries = keys.map((k) => ({ k, a: p.get(k) ?? 0, b: q.get(k) ?? 0 }))
  entries.sort(sortBy)
  const lines = [`\n${title}`, `${'plain'.padStart(8)} ${'recycled'.padStart(9)} ${'diff'.padStart(7)}  (µs per connection, self time)`]
  for (const e of entries.slice(0, rows)) {
    lines.push(`${e.a.toFixed(2).padStart(8)} ${e.b.toFixed(2).padStart(9)} ${(e.b - e.a >= 0 ? '+' : '') + (e.b - e.a).toFixed(2).padStart(6)}  ${e.k}`)
  }
  return lines.join('\n')
}

const total = (mode, pick) => median(runs[mode].map(pick))
const sumNonIdle = (x) => [...x.fns].reduce((s, [k, v]) => (k === '(idle)' ? s : s + v), 0) / n
const out = []
out.push(`\n${args.kind} (${args.kind === 'http' ? server.what : server.what}), ${n} connections per run, ${inFlight} in flight, median of ${repeat} run(s) per arm`)
out.push(`CPU (process.cpuUsage, profiler on) µs/conn: plain user ${total('plain', (x) => x.user).toFixed(1)} sys ${total('plain', (x) => x.sys).toFixed(1)}; recycled user ${total('recycled', (x) => x.user).toFixed(1)} sys ${total('recycled', (x) => x.sys).toFixed(1)}`)
out.push(`JS thread, profiled non-idle µs/conn: plain ${total('plain', sumNonIdle).toFixed(1)}, recycled ${total('recycled', sumNonIdle).toFixed(1)}`)
out.push(table(`By file (top ${top} by the larger arm)`, (x) => x.files, top, (x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b)))
out.push(table(`By function (top ${top} by the larger arm)`, (x) => x.fns, top, (x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b)))
out.push(table(`Recycled costs more (top ${top})`, (x) => x.fns, top, (x, y) => (y.b - y.a) - (x.b - x.a)))
out.push(table(`Recycled costs less (top ${Math.min(top, 10)})`, (x) => x.fns, Math.min(top, 10), (x, y) => (x.b - x.a) - (y.b - y.a)))
if (args.save) out.push(`\nprofiles: ${dir}`)
process.stdout.write(`${out.join('\n')}\n`)
cleanupAll()
