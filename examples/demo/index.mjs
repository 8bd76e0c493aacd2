#!/usr/bin/env node
// npm run demo [-- --connections N] [-- --pg URL] [-- --redis URL] [-- --no-strace]
// A "microservice talking to many backends": embedded loopback backends (a line protocol that
// closes after the client's goodbye, and HTTP with `Connection: close`), a churn of connections to
// them through plain sockets and through fdrecycle, in alternating rounds, and a short report of
// what each side cost and left behind. No external service; under a minute.
// Needs the packages built (`npm run demo` at the root does it through scripts/bootstrap.mjs).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SocketRecycler, isRecyclingSupported, recyclingSupport } from '@fdrecycle/core'
import { backendSet } from './backends.mjs'
import { churn, makeClient } from './churn.mjs'

const USAGE = `usage: npm run demo [-- options]
  --connections <n>  connections per side to the embedded backends (default 4000)
  --pg <url>         also churn pg.Client connect/SELECT 1/end against this PostgreSQL
  --redis <url>      also churn ioredis connect/PING/quit against this Redis
  --no-strace        skip the syscall count (strace) even where it is available`

const IN_FLIGHT = 16
const BACKENDS = 4 // per protocol and per side
const ROUNDS = 4

let args
try {
  args = parseArgs({
    options: {
      connections: { type: 'string', default: process.env.DEMO_CONNECTIONS ?? '4000' },
      pg: { type: 'string' },
      redis: { type: 'string' },
      'no-strace': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      // internal: the client alone, for strace (the backends stay in the parent, untraced)
      client: { type: 'string' },
      n: { type: 'string' },
      'line-ports': { type: 'string' },
      'http-ports': { type: 'string' },
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

async function loadAgent() {
  try {
    return (await import('@fdrecycle/http-adapter')).RecycledAgent
  } catch {
    return null
  }
}

// ---- the client alone, run under strace by the parent --------------------------------------
if (args.client) {
  const list = (v) => (v ? v.split(',').map(Number) : [])
  const ports = { line: list(args['line-ports']), http: list(args['http-ports']) }
  const recycler = args.client === 'recycled' ? new SocketRecycler() : undefined
  const client = makeClient(args.client, ports, { recycler, RecycledAgent: await loadAgent() })
  await churn(client, Number(args.n), IN_FLIGHT)
  await recycler?.close()
  process.exit(0)
}

const CONNECTIONS = Number(args.connections)
if (!Number.isInteger(CONNECTIONS) || CONNECTIONS < ROUNDS * 10) {
  console.error(`--connections must be an integer of at least ${ROUNDS * 10}\n${USAGE}`)
  process.exit(2)
}

// ---- output helpers --------------------------------------------------------------------------
const tty = process.stdout.isTTY
/** A progress bar, redrawn in place on a terminal; elsewhere only its last state is printed. */
function progressBar(label, total) {
  const width = 30
  let last = -1
  const draw = (done, note = '') => {
    const filled = Math.round((done / total) * width)
    process.stdout.write(`\r  ${label.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(String(total).length)}/${total} ${note.padEnd(22)}`)
  }
  return {
    update(done, note) {
      const pct = Math.floor((done / total) * 100)
      if (tty && pct !== last) {
        last = pct
        draw(done, note)
      }
    },
    finish(note) {
      draw(total, note)
      process.stdout.write('\n')
    },
  }
}

const fmt = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : String(x))
const median = (v) => {
  const s = [...v].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
function row(label, plain, recycled) {
  console.log(`  ${label.padEnd(40)} ${fmt(plain, typeof plain === 'number' && !Number.isInteger(plain) ? 2 : 0).padStart(10)} ${fmt(recycled, typeof recycled === 'number' && !Number.isInteger(recycled) ? 2 : 0).padStart(10)}`)
}

/** Client-side TIME_WAIT towards these server ports, optionally only from these local ports. */
function timeWait(ports, localPorts) {
  try {
    const filter = ports.map((p) => `dport = :${p}`).join(' or ')
    const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( ${filter} )`], { encoding: 'utf8' })
    const lines = out.split('\n').filter((l) => l.trim() !== '')
    if (!localPorts) return lines.length
    return lines.filter((l) => localPorts.has(Number(/:(\d+)\s+\S+:\d+\s*$/.exec(l.trim())?.[1]))).length
  } catch {
    return 'n/a (no ss)'
  }
}

/** Runs plain and recycled in alternating rounds; returns per-side connections/s and the clients. */
async function abRounds(label, makeSide, total, inFlight, warmup = 0) {
  // Warm-up clients of their own: their local ports stay out of the TIME_WAIT attribution.
  for (const mode of warmup > 0 ? ['plain', 'recycled'] : []) await churn(makeSide(mode), warmup, inFlight)
  const per = Math.floor(total / ROUNDS)
  const bar = progressBar(label, per * ROUNDS * 2)
  const sides = { plain: makeSide('plain'), recycled: makeSide('recycled') }
  const rates = { plain: [], recycled: [] }
  let done = 0
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 === 0 ? ['plain', 'recycled'] : ['recycled', 'plain']) {
      const base = done
      const seconds = await churn(sides[mode], per, inFlight, (k) => bar.update(base + k, `round ${r + 1}/${ROUNDS} ${mode}`))
      done += per
      rates[mode].push(per / seconds)
    }
  }
  bar.finish('done')
  const ratios = rates.recycled.map((x, i) => x / rates.plain[i])
  return { sides, per, perSecond: { plain: median(rates.plain), recycled: median(rates.recycled) }, ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) } }
}

// ---- syscalls per connection (strace -f -c, differential) ------------------------------------
function straceUsable() {
  if (args['no-strace']) return 'skipped (--no-strace)'
  const r = spawnSync('strace', ['-f', '-c', '-o', '/dev/null', 'true'], { encoding: 'utf8' })
  if (r.error) return 'n/a (strace not installed)'
  if (r.status !== 0) return `n/a (strace cannot trace here: ${r.stderr.trim().split('\n')[0]})`
  return null
}

async function straceCalls(mode, n, ports, dir) {
  const file = join(dir, `${mode}-${n}.txt`)
  const child = spawn('strace', ['-f', '-c', '-o', file, process.execPath, fileURLToPath(import.meta.url),
    '--client', mode, '--n', String(n), '--line-ports', ports.line.join(','), '--http-ports', ports.http.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] })
  // the child's connections go to the backends of this process, which keeps serving meanwhile
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const code = await new Promise((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`strace run failed (${code}): ${stderr.trim().slice(-300)}`)
  let total = 0
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const t = line.trim().split(/\s+/)
    if (t.length >= 5 && /^\d/.test(t[0]) && t[t.length - 1] !== 'total') total += Number(t[3])
  }
  return total
}

/** Per protocol ('line', 'http'): { plain, recycled } syscalls per connection, or why not. */
async function syscallsPerConnection(protocols) {
  const why = straceUsable()
  if (why) return Object.fromEntries(protocols.map((p) => [p, { plain: why, recycled: why }]))
  const dir = mkdtempSync(join(os.tmpdir(), 'fdrecycle-demo-'))
  const [n1, n2] = [300, 900]
  const out = {}
  const bar = progressBar('strace', protocols.length * 4)
  let k = 0
  try {
    for (const protocol of protocols) {
      out[protocol] = {}
      for (const mode of ['plain', 'recycled']) {
        const ports = { line: protocol === 'line' ? backends[mode].line : [], http: protocol === 'http' ? backends[mode].http : [] }
        const a = await straceCalls(mode, n1, ports, dir)
        bar.update(++k, `${protocol} ${mode}`)
        const b = await straceCalls(mode, n2, ports, dir)
        bar.update(++k, `${protocol} ${mode}`)
        out[protocol][mode] = (b - a) / (n2 - n1)
      }
    }
    bar.finish('done')
    return out
  } catch (err) {
    process.stdout.write('\n')
    return Object.fromEntries(protocols.map((p) => [p, { plain: `n/a (${err.message.split('\n')[0]})`, recycled: 'n/a' }]))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---- the run ---------------------------------------------------------------------------------
const supported = isRecyclingSupported()
const RecycledAgent = await loadAgent()
const backends = { plain: await backendSet(BACKENDS), recycled: await backendSet(BACKENDS) }
if (!RecycledAgent) for (const b of Object.values(backends)) b.http = []
const warmSet = await backendSet(1)
const started = Date.now()

console.log(`fdrecycle demo: a microservice talking to ${BACKENDS * (RecycledAgent ? 2 : 1)} backends per side (${BACKENDS} line-protocol${RecycledAgent ? `, ${BACKENDS} HTTP Connection: close` : ''}), on loopback in this process`)
console.log(`  ${fmt(CONNECTIONS)} connections per side, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds; recycling here: ${supported ? 'yes' : `no (${recyclingSupport().reason}): both sides use plain sockets`}`)
if (!RecycledAgent) console.log('  (@fdrecycle/http-adapter is not built: HTTP backends left out)')
console.log('')

const recycler = new SocketRecycler()
const libs = { recycler, RecycledAgent }
// Warm-up on backends of their own: the JIT and the recycler's first fds, kept out of the counts.
for (const mode of ['plain', 'recycled']) {
  await churn(makeClient(mode, { line: warmSet.line, http: RecycledAgent ? warmSet.http : [] }, libs), 400, IN_FLIGHT)
}
const before = recycler.stats()
let embedded
try {
  embedded = await abRounds('churn', (mode) => makeClient(mode, backends[mode], libs), CONNECTIONS, IN_FLIGHT)
} catch (err) {
  console.error(`\n  a connection failed: ${err.stack ?? err}`)
  await recycler.close()
  process.exit(1)
}
const after = recycler.stats()
const portsOf = (mode) => [...backends[mode].line, ...backends[mode].http]
const tw = { plain: timeWait(portsOf('plain')), recycled: timeWait(portsOf('recycled')) }
const made = embedded.per * ROUNDS
const syscalls = await syscallsPerConnection(RecycledAgent ? ['line', 'http'] : ['line'])

const real = []
for (const [flag, load] of [['pg', async (u) => (await import('./real-servers.mjs')).pgWorkload(u)], ['redis', async (u) => (await import('./real-servers.mjs')).redisWorkload(u)]]) {
  if (!args[flag]) continue
  try {
    const workload = await load(args[flag])
    const s0 = recycler.stats()
    const res = await abRounds(flag, (mode) => workload(mode, recycler), 400, 4, 40)
    const s1 = recycler.stats()
    const port = res.sides.plain.port
    real.push({
      flag,
      url: `${res.sides.plain.host}:${res.sides.plain.port}`,
      res,
      made: res.per * ROUNDS,
      stats: { connections: s1.connections - s0.connections, fdsCreated: s1.fdsCreated - s0.fdsCreated, reused: s1.reusedConnections - s0.reusedConnections },
      tw: { plain: timeWait([port], res.sides.plain.localPorts), recycled: timeWait([port], res.sides.recycled.localPorts) },
    })
  } catch (err) {
    real.push({ flag, error: err.message })
  }
}

await recycler.close()
await Promise.all([backends.plain.close(), backends.recycled.close(), warmSet.close()])

console.log('')
row('embedded backends', 'plain', 'recycled')
row('connections made', made, after.connections - before.connections)
row('fds created (socket(2) calls)', made, after.fdsCreated - before.fdsCreated)
row('connections on a reused fd', 0, after.reusedConnections - before.reusedConnections)
row('client TIME_WAIT left behind (ss)', tw.plain, tw.recycled)
row('syscalls per connection, line protocol', syscalls.line.plain, syscalls.line.recycled)
if (syscalls.http) row('syscalls per connection, HTTP', syscalls.http.plain, syscalls.http.recycled)
row('connections per second (median round)', Math.round(embedded.perSecond.plain), Math.round(embedded.perSecond.recycled))
console.log(`\n  throughput recycled / plain: ${embedded.ratio.median.toFixed(2)}x (rounds ${embedded.ratio.min.toFixed(2)}–${embedded.ratio.max.toFixed(2)})`)
if (typeof syscalls.line.plain === 'number') console.log('  syscalls: `strace -f -c` of a client-only child process, (calls at 900 - calls at 300) / 600.')
console.log('  The backends run in this process, so their work is in the figures too; `npm run bench` runs')
console.log('  servers in their own processes, in interleaved rounds, with medians and a C ceiling.')

for (const r of real) {
  console.log('')
  if (r.error) {
    console.log(`  --${r.flag}: failed: ${r.error}`)
    continue
  }
  row(`--${r.flag} ${r.url}`.slice(0, 40), 'plain', 'recycled')
  row('connections made (with 40 warm-up)', r.made + 40, r.stats.connections)
  row('fds created', r.made + 40, r.stats.fdsCreated)
  row('connections on a reused fd', 0, r.stats.reused)
  row('client TIME_WAIT left behind (ss)', r.tw.plain, r.tw.recycled)
  row('connections per second (median round)', Math.round(r.res.perSecond.plain), Math.round(r.res.perSecond.recycled))
  console.log(`\n  throughput recycled / plain: ${r.res.ratio.median.toFixed(2)}x (rounds ${r.res.ratio.min.toFixed(2)}–${r.res.ratio.max.toFixed(2)}); TIME_WAIT counted on the local ports each side used`)
}
console.log(`\n  (${((Date.now() - started) / 1000).toFixed(1)} s)`)
