#!/usr/bin/env node
// npm run demo [-- options]
// A service talking to many backends, as it runs in production: the client ("the service") in
// one process, 32 line-protocol and 32 HTTP backends in two others, all on loopback. The client
// opens a connection per request through plain sockets and through fdrecycle, in interleaved
// rounds, and the demo reports what each side cost and left behind, measured in this run only.
// Where it can (root, `ip netns`) it then shows the port-exhaustion case off loopback.
// Needs the packages built (`npm run demo` at the root does it through scripts/bootstrap.mjs).
import { execFile, fork } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { clientSockets, portSampler } from './observe.mjs'
import { median, printReport } from './report.mjs'

const USAGE = `usage: npm run demo [-- options]
  --quick            a short run (2 small rounds, no port-exhaustion part): for a smoke test
  --rounds <n>       interleaved rounds per side (default 5)
  --no-exhaustion    skip the port-exhaustion part (two network namespaces; needs root)
  --pg <url>         also churn pg.Client connect/SELECT 1/end against this PostgreSQL
  --redis <url>      also churn ioredis connect/PING/quit against this Redis
  --json <file>      also write the measured figures to <file> as JSON`

let args
try {
  args = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'no-exhaustion': { type: 'boolean', default: false },
      pg: { type: 'string' },
      redis: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  console.error(`${err.message}\n${USAGE}`)
  process.exit(2)
}
if (args.help) {
  console.log(USAGE)
  process.exit(0)
}

const HERE = dirname(fileURLToPath(import.meta.url))
const BACKENDS = 32 // per protocol
const IN_FLIGHT = 16
const ROUNDS = Number(args.rounds ?? (args.quick ? 2 : 5))
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50) {
  console.error(`--rounds must be an integer from 1 to 50\n${USAGE}`)
  process.exit(2)
}
// Connections per side before the rounds, on backends of their own. V8 goes on compiling the
// client's code for thousands of connections, on helper threads whose CPU time is the client's,
// and the recycled path has more code to compile: after 1,500 connections, the HTTP half's CPU
// per connection was 182 µs plain and 229 µs recycled, 33 and 54 µs of it on V8's compiler
// threads (bench/demo-profile.mjs --perf); after 20,000, 126 and 134 µs, 2 of it. A
// service runs warm: a side is warm once its helper threads take under WARMUP_HELPER_SHARE of its
// CPU in a chunk, or at the limits below.
const WARMUP = args.quick ? 100 : 30000 // most per side
const WARMUP_MIN = args.quick ? 100 : 3000
const WARMUP_SECONDS = args.quick ? 0.5 : 5 // per side: a busy machine keeps the demo short
const WARMUP_CHUNK = args.quick ? 50 : 500
const WARMUP_HELPER_SHARE = 0.05
const BATCH_SECONDS = args.quick ? 0.15 : 0.7 // each round's batch is sized from the warm-up rate
const EXHAUSTION_N = 500 // 5 times the client's 100 ports: plain runs out, recycled does not

// ---- children: stopped at exit whatever happens; they also exit when their IPC channel closes ----
const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130))

function forkChild(file, argv) {
  const child = fork(join(HERE, file), argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

async function startBackends(kind, hosts) {
  const child = forkChild('backends.mjs', [kind, hosts.join(',')])
  const [msg] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`the ${kind} backends exited (${code}) before listening`)
    }),
  ])
  return { child, listeners: msg.listeners }
}

/** The client process: `request(msg, onProgress)` resolves with its reply. */
function startClient() {
  const child = forkChild('client.mjs', [])
  let pending = null
  child.on('message', (msg) => {
    if (!pending) return
    if ('progress' in msg) return pending.onProgress(msg.progress)
    const p = pending
    pending = null
    if (msg.error) p.reject(new Error(`client: ${msg.error}`))
    else p.resolve(msg.reply)
  })
  child.on('exit', (code, signal) => pending?.reject(new Error(`the client process exited (${code ?? signal})`)))
  return {
    child,
    request(msg, onProgress = () => {}) {
      return new Promise((resolve, reject) => {
        pending = { resolve, reject, onProgress }
        child.send(msg)
      })
    },
  }
}

// ---- output ---------------------------------------------------------------------------------
const tty = process.stdout.isTTY
/** A progress bar, redrawn in place on a terminal; elsewhere only its final state is printed. */
function progressBar(label, total) {
  const width = 30
  const draw = (done, note = '') => {
    const filled = Math.round((Math.min(done, total) / total) * width)
    process.stdout.write(`\r  ${label.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.min(done, total)).padStart(String(total).length)}/${total} ${note.padEnd(24)}`)
  }
  return {
    update(done, note) {
      if (tty) draw(done, note)
    },
    finish(note, done = total) {
      draw(done, note)
      process.stdout.write('\n')
    },
  }
}

// ---- the run ----------------------------------------------------------------------------------
const started = Date.now()
const load0 = os.loadavg()[0]

// The backends' addresses: a /24 of loopback picked at random, so that the TIME_WAIT of an
// earlier run (60 s) cannot be counted in this one. .1-32 line/plain, .33-64 line/recycled,
// .65-96 HTTP/plain, .97-128 HTTP/recycled, .129 and .130 the warm-up's.
const net24 = `127.${64 + Math.floor(Math.random() * 160)}.${Math.floor(Math.random() * 256)}`
const hosts = (from, count) => Array.from({ length: count }, (_, i) => `${net24}.${from + i}`)
const [lineSet, httpSet] = await Promise.all([
  startBackends('line', [...hosts(1, 2 * BACKENDS), `${net24}.129`]),
  startBackends('http', [...hosts(65, 2 * BACKENDS), `${net24}.130`]),
])
const targets = {
  plain: { line: lineSet.listeners.slice(0, BACKENDS), http: httpSet.listeners.slice(0, BACKENDS) },
  recycled: { line: lineSet.listeners.slice(BACKENDS, 2 * BACKENDS), http: httpSet.listeners.slice(BACKENDS, 2 * BACKENDS) },
  warm: { line: lineSet.listeners.slice(2 * BACKENDS), http: httpSet.listeners.slice(2 * BACKENDS) },
}
const sides = new Map()
for (const mode of ['plain', 'recycled']) for (const kind of ['line', 'http']) for (const t of targets[mode][kind]) sides.set(`${t.host}:${t.port}`, `${mode}/${kind}`)
const onOwnNet = [...sides.keys()].every((k) => k.startsWith(`${net24}.`))
const prefix = onOwnNet ? `${net24}.0/24` : '127.0.0.1/32'

const client = startClient()
const setup = await client.request({ cmd: 'setup', targets, pg: args.pg, redis: args.redis })

console.log(`fdrecycle demo: one service process, ${2 * BACKENDS} backends in two other processes (loopback ${onOwnNet ? `${net24}.x` : '127.0.0.1'})`)
console.log(`  ${BACKENDS} line-protocol backends: the server closes after the client's goodbye, as PostgreSQL and Redis do`)
console.log(`  ${BACKENDS} HTTP backends answering "Connection: close"`)
console.log(`  every request opens a connection, makes one exchange and closes it; ${IN_FLIGHT} requests at a time`)
console.log(`  recycling on this machine: ${setup.recycling.supported ? 'yes' : `no (${setup.recycling.reason}): the recycled side uses plain sockets`}`)
console.log(`  ${os.cpus().length} CPUs, load average ${load0.toFixed(1)} at start${load0 > os.cpus().length ? ' (busy: other programs share the CPUs, so speed figures are noisy)' : ''}`)
console.log('')

const sampler = portSampler(prefix, sides, args.quick ? 100 : 400)
const result = {
  quick: args.quick,
  node: process.version,
  cpus: os.cpus().length,
  loadAverage: { start: load0 },
  recycling: setup.recycling,
  backends: { line: BACKENDS, http: BACKENDS, processes: 2, addresses: prefix },
  inFlight: IN_FLIGHT,
  rounds: [],
}

let failure = null
try {
  // Warm-up: the JIT and the recycler's first fds, on backends of their own; its slower side's
  // rate sizes the batches so that a round takes about BATCH_SECONDS.
  const warmBar = progressBar('warm-up', 2 * WARMUP)
  // In chunks, the sides taking turns (both warm the same Node internals), until each is warm (its
  // helper threads quiet) or at WARMUP connections or WARMUP_SECONDS per side. The last chunk's
  // rate, the warmest, sizes the rounds.
  const side = () => ({ n: 0, seconds: 0, warm: false, quiet: false, rate: 0, helperShare: null })
  const warm = { plain: side(), recycled: side() }
  const more = (w) => !w.warm && w.n < WARMUP && (w.seconds < WARMUP_SECONDS || w.n < 100)
  while (more(warm.plain) || more(warm.recycled)) {
    for (const mode of ['plain', 'recycled']) {
      const w = warm[mode]
      if (!more(w)) continue
      const done = () => warm.plain.n + warm.recycled.n
      const base = done()
      const r = await client.request({ cmd: 'run', workload: 'warm', mode, n: WARMUP_CHUNK, inFlight: IN_FLIGHT }, (d) => warmBar.update(base + d, mode))
      if (r.failed > 0) throw new Error(`warm-up (${mode}): ${r.failed} of ${r.n} connections failed: ${JSON.stringify(r.errors)}`)
      w.n += r.n
      w.seconds += r.seconds
      w.rate = r.n / r.seconds
      w.helperShare = r.helperCpuUs === null ? null : r.helperCpuUs / (r.cpuUserUs + r.cpuSystemUs)
      // two chunks in a row: one alone can fall between two compilations
      const quiet = w.helperShare !== null && w.helperShare < WARMUP_HELPER_SHARE
      if (w.n >= WARMUP_MIN && quiet && w.quiet) w.warm = true
      w.quiet = quiet
    }
  }
  const warmDone = warm.plain.n + warm.recycled.n
  warmBar.finish(warm.plain.warm && warm.recycled.warm ? 'done' : 'done (limit reached)', warmDone)
  result.warmup = Object.fromEntries(['plain', 'recycled'].map((m) => [m, { connections: warm[m].n, seconds: warm[m].seconds, warm: warm[m].warm, helperShare: warm[m].helperShare }]))
  result.warmup.limits = { connections: WARMUP, seconds: WARMUP_SECONDS, helperShare: WARMUP_HELPER_SHARE }
  const perRound = Math.max(50, Math.round((Math.min(warm.plain.rate, warm.recycled.rate) * BATCH_SECONDS) / 50) * 50)

  // Interleaved rounds: plain, recycled; then recycled, plain; ... so that a drift in the
  // machine's load falls on both sides alike.
  const bar = progressBar('rounds', 2 * ROUNDS * perRound)
  let done = 0
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 === 0 ? ['plain', 'recycled'] : ['recycled', 'plain']) {
      const base = done
      const res = await client.request({ cmd: 'run', workload: 'backends', mode, n: perRound, inFlight: IN_FLIGHT }, (d) => bar.update(base + d, `round ${r + 1}/${ROUNDS} ${mode}`))
      done += perRound
      result.rounds.push({ round: r + 1, mode, ...res })
    }
  }
  bar.finish('done')
} catch (err) {
  failure = err
}
const samples = await sampler.stop()
result.portsOverTime = samples
result.timeWait = await clientSockets(prefix, sides, { state: 'time-wait' })

if (!failure) {
  try {
    const summary = await client.request({ cmd: 'summary' })
    result.sides = {}
    for (const mode of ['plain', 'recycled']) {
      const rounds = result.rounds.filter((r) => r.mode === mode)
      const sum = (f) => rounds.reduce((s, r) => s + f(r), 0)
      const connections = sum((r) => r.n)
      const tw = result.timeWait ? { line: result.timeWait.byKind[`${mode}/line`] ?? 0, http: result.timeWait.byKind[`${mode}/http`] ?? 0 } : null
      result.sides[mode] = {
        connections,
        failed: sum((r) => r.failed),
        errors: Object.assign({}, ...rounds.map((r) => r.errors)),
        // plain: every socket(2) call shows as a new kernel socket (inode); recycled: the recycler counts its own
        // (null where /proc/self/fd shows no socket inodes: not Linux)
        socketsCreated: mode === 'plain' ? summary.distinctSockets.plain || null : sum((r) => r.recycler.fdsCreated),
        distinctSockets: summary.distinctSockets[mode] || null,
        reusedConnections: mode === 'plain' ? 0 : sum((r) => r.recycler.reusedConnections),
        recycler: mode === 'plain' ? null : Object.fromEntries(Object.keys(rounds[0].recycler).map((k) => [k, sum((r) => r.recycler[k])])),
        timeWait: tw ? tw.line + tw.http : null,
        timeWaitByProtocol: tw,
        portsPeak: samples.length > 0 ? Math.max(...samples.map((s) => s[mode])) : null,
        perSecond: median(rounds.map((r) => r.n / r.seconds)),
        cpuUsPerConnection: median(rounds.map((r) => (r.cpuUserUs + r.cpuSystemUs) / r.n)),
        cpuUserUsPerConnection: median(rounds.map((r) => r.cpuUserUs / r.n)),
        cpuSystemUsPerConnection: median(rounds.map((r) => r.cpuSystemUs / r.n)),
        helperCpuUsPerConnection: rounds.every((r) => r.helperCpuUs !== null) ? median(rounds.map((r) => r.helperCpuUs / r.n)) : null,
      }
    }
    const plainRounds = result.rounds.filter((r) => r.mode === 'plain')
    const ratios = result.rounds.filter((r) => r.mode === 'recycled').map((r, i) => (r.n / r.seconds) / (plainRounds[i].n / plainRounds[i].seconds))
    result.ratio = { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), rounds: ratios }
    const cpuRatios = result.rounds.filter((r) => r.mode === 'recycled').map((r, i) => (r.cpuUserUs + r.cpuSystemUs) / r.n / ((plainRounds[i].cpuUserUs + plainRounds[i].cpuSystemUs) / plainRounds[i].n))
    result.cpuRatio = { median: median(cpuRatios), min: Math.min(...cpuRatios), max: Math.max(...cpuRatios) }

    // --pg / --redis: the same interleaving against servers the user names (nothing is started).
    result.real = []
    for (const name of ['pg', 'redis']) {
      if (!args[name]) continue
      const info = setup.real[name]
      if (info.error) {
        result.real.push({ name, error: info.error })
        continue
      }
      try {
        // Sized like the loopback rounds: a real server's connections cost far more (a PostgreSQL
        // backend process per connection), so a fixed count could take minutes on a slow machine.
        const warm = []
        for (const mode of ['plain', 'recycled']) {
          const w = await client.request({ cmd: 'run', workload: name, mode, n: 20, inFlight: 4 })
          if (w.failed > 0) throw new Error(`${w.failed} of ${w.n} warm-up connections (${mode}) failed: ${JSON.stringify(w.errors)}`)
          warm.push(w)
        }
        const n = Math.max(10, Math.min(args.quick ? 20 : 200, Math.round(Math.min(...warm.map((w) => w.n / w.seconds)) * BATCH_SECONDS * 0.5)))
        const snapshot = await client.request({ cmd: 'summary' })
        const before = snapshot.realSockets[name]
        const warmPorts = new Set([...snapshot.localPorts[name].plain, ...snapshot.localPorts[name].recycled])
        const bar = progressBar(name, 2 * ROUNDS * n)
        const rounds = []
        for (let r = 0; r < ROUNDS; r++) {
          for (const mode of r % 2 === 0 ? ['plain', 'recycled'] : ['recycled', 'plain']) {
            const base = rounds.length * n
            const res = await client.request({ cmd: 'run', workload: name, mode, n, inFlight: 4 }, (d) => bar.update(base + d, `round ${r + 1}/${ROUNDS} ${mode}`))
            rounds.push({ mode, ...res })
          }
        }
        bar.finish('done')
        const after = (await client.request({ cmd: 'summary' })).realSockets[name]
        // plain: new kernel sockets seen in the rounds (inodes); recycled: the recycler's own count
        const plainSockets = after.plain - before.plain
        result.real.push({ name, host: info.host, port: info.port, rounds, warmPorts, socketsCreated: { plain: plainSockets, recycled: rounds.filter((k) => k.mode === 'recycled').reduce((t, k) => t + k.recycler.fdsCreated, 0) } })
      } catch (err) {
        result.real.push({ name, error: err.message })
      }
    }
    if (result.real.length > 0) {
      const { localPorts } = await client.request({ cmd: 'summary' })
      for (const r of result.real.filter((x) => !x.error)) {
        // Both sides talk to the same server: TIME_WAIT told apart by the local ports each used.
        // The warm-up's ports are left out: its TIME_WAIT is not the rounds'.
        const own = (mode) => localPorts[r.name][mode].filter((p) => !r.warmPorts.has(p)).map((p) => [`${r.host}:${r.port}:${p}`, mode])
        const byPort = new Map([...own('plain'), ...own('recycled')])
        delete r.warmPorts
        r.timeWait = await realTimeWait(r.host, r.port, byPort)
      }
    }
  } catch (err) {
    failure = err
  }
}
await client.request({ cmd: 'exit' }).catch(() => {})
for (const b of [lineSet, httpSet]) b.child.disconnect()

// ---- port exhaustion off loopback (two namespaces over veth), where this machine allows ----------
if (!failure) {
  if (args.quick) result.exhaustion = { skipped: 'skipped in --quick' }
  else if (args['no-exhaustion']) result.exhaustion = { skipped: 'skipped (--no-exhaustion)' }
  else result.exhaustion = await exhaustion()
}
result.loadAverage.end = os.loadavg()[0]
result.seconds = (Date.now() - started) / 1000

if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`)
if (failure) {
  console.error(`\n  the demo failed: ${failure.stack ?? failure}`)
  process.exit(1)
}
printReport(result)
process.exit(result.sides.plain.failed + result.sides.recycled.failed > 0 || result.real.some((x) => x.error) || result.exhaustion?.error ? 1 : 0)

function realTimeWait(host, port, byPort) {
  return new Promise((resolve) => {
    execFile('ss', ['-Htan', 'state', 'time-wait', `( dst ${host} and dport = :${port} )`], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 }, (err, out) => {
      if (err) return resolve(null)
      const counts = { plain: 0, recycled: 0 }
      for (const line of out.split('\n')) {
        const f = line.trim().split(/\s+/)
        if (f.length < 2) continue
        const local = f[f.length - 2]
        const side = byPort.get(`${host}:${port}:${local.slice(local.lastIndexOf(':') + 1)}`)
        if (side) counts[side]++
      }
      resolve(counts)
    })
  })
}

/**
 * The bench's port-exhaustion scenario, shortened: two namespaces joined by a veth pair, the
 * client's ip_local_port_range cut to 100 ports, EXHAUSTION_N goodbye-then-close connections per
 * side. The scenario deletes its namespaces when it ends, also when it fails or is interrupted.
 */
async function exhaustion() {
  if (process.getuid?.() !== 0) return { skipped: 'skipped: needs root (it creates two network namespaces with `ip netns`)' }
  let scenario
  try {
    scenario = await import('../../bench/scenarios/exhaustion.mjs')
  } catch (err) {
    return { skipped: `skipped: the bench's exhaustion scenario does not load (${err.code ?? err.message})` }
  }
  const total = 2
  const bar = progressBar('exhaustion', total)
  let step = 0
  try {
    bar.update(0, 'namespaces, plain')
    const out = await scenario.run({ quick: true, n: EXHAUSTION_N, log: (line) => bar.update(/: (plain|recycled): /.test(line) ? ++step : step, step === 0 ? 'plain' : 'recycled') })
    bar.finish('done')
    const side = (m) => ({ completed: out[m].completed, failed: out[m].failed, errors: out[m].errors, timeWait: out[m].clientTimeWait, seconds: out[m].seconds })
    return { n: EXHAUSTION_N, portRange: out.params.ip_local_port_range, plain: side('plain'), recycled: side('recycled') }
  } catch (err) {
    process.stdout.write('\n')
    if (err.skip === true) return { skipped: `skipped: ${err.message}` }
    return { error: err.message }
  }
}
