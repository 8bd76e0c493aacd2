#!/usr/bin/env node
// npm start -w @fdrecycle/example-microservice [-- options]
// Runs service.mjs (unchanged) twice under the same load, plain and with
// `node --import @fdrecycle/auto`, and prints side by side what each run did per backend: the
// connect() calls, the socket() calls behind them, the client TIME_WAIT left, and whether the
// responses were the same. Starts Debian's PostgreSQL and redis-server itself unless --pg/--redis
// name servers; the upstream (`Connection: close`) runs in a child process of its own.
//
// Counting: the service runs under `strace -f -y -e trace=socket,connect`; every connect() to an
// AF_INET/AF_INET6 address names its socket by inode, so that a socket connected again after being
// recycled is seen as the same socket. Client TIME_WAIT: `ss state time-wait` towards each
// backend, entries that appeared during the run. With the servers started here each run talks to
// its own loopback address (plain 127.0.0.2, with auto 127.0.0.3), so neither run's entries are
// counted in the other's.
import { fork, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { lookup } from 'node:dns/promises'
import { createRequire } from 'node:module'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { onCleanup } from '../../bench/lib/cleanup.mjs'
import { stopPid } from '../../bench/lib/procs.mjs'
import { LOOPBACKS, startPostgres, startRedis } from '../../bench/lib/servers.mjs'
import { straceAvailable } from '../../bench/lib/strace.mjs'

const USAGE = `usage: npm start -w @fdrecycle/example-microservice [-- options]
  --requests <n>     requests per run (default 200)
  --concurrency <n>  requests in flight (default 8)
  --pg-max-uses <n>  queries per pooled pg connection before the pool replaces it (default 5)
  --pg <url>         use this PostgreSQL (postgres://user@host:port/db) instead of starting one
  --redis <url>      use this Redis (redis://host:port) instead of starting one
  --only <arm>       run one arm: plain or auto
  --json <file>      also write the figures to <file> as JSON`

const EXIT_BOUND_MS = 20_000
const HERE = dirname(fileURLToPath(import.meta.url))
const ARMS = { plain: { label: 'plain', host: LOOPBACKS[1], execArgv: [] }, auto: { label: 'with auto', host: LOOPBACKS[2], execArgv: ['--import', '@fdrecycle/auto'] } }

function usage(message) {
  console.error(`${message}\n${USAGE}`)
  process.exit(2)
}

function positiveInt(name, value, fallback, max) {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > max) usage(`--${name} must be an integer from 1 to ${max}, got ${value}`)
  return n
}

function parseUrl(name, value, protocols) {
  let url
  try {
    url = new URL(value)
  } catch {
    usage(`--${name} is not a URL: ${value}`)
  }
  if (!protocols.includes(url.protocol)) usage(`--${name} must start with ${protocols.join(' or ')}, got ${value}`)
  if (url.hostname === '') usage(`--${name} must name a TCP host (a Unix socket has nothing to recycle), got ${value}`)
  return url
}

let args
try {
  args = parseArgs({
    options: {
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      'pg-max-uses': { type: 'string' },
      pg: { type: 'string' },
      redis: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  usage(err.message)
}
if (args.help) {
  console.log(USAGE)
  process.exit(0)
}
const REQUESTS = positiveInt('requests', args.requests, 200, 100_000)
const CONCURRENCY = positiveInt('concurrency', args.concurrency, 8, 256)
const PG_MAX_USES = positiveInt('pg-max-uses', args['pg-max-uses'], 5, 1_000_000)
if (args.only !== undefined && !(args.only in ARMS)) usage(`--only must be plain or auto, got ${args.only}`)
const armNames = args.only ? [args.only] : ['plain', 'auto']
const givenPg = args.pg ? parseUrl('pg', args.pg, ['postgres:', 'postgresql:']) : null
const givenRedis = args.redis ? parseUrl('redis', args.redis, ['redis:']) : null

// ---- what this machine offers ----
const strace = straceAvailable()
if (!strace.ok) console.error(`note: ${strace.reason}; socket() and connect() counts are left out`)
const hasSs = spawnSync('ss', ['-V']).status === 0
if (!hasSs) console.error('note: `ss` is missing (apt-get install iproute2); TIME_WAIT counts are left out')
if (armNames.includes('auto')) {
  let entry = null
  try {
    const pkg = createRequire(join(HERE, 'package.json')).resolve('@fdrecycle/auto/package.json')
    entry = join(dirname(pkg), 'dist', 'esm', 'index.js')
  } catch {}
  if (!entry || !existsSync(entry)) {
    console.error('@fdrecycle/auto is not built: run `npm run build` at the repository root first')
    process.exit(1)
  }
}

// ---- backends ----
const upstreamChild = fork(join(HERE, 'upstream.mjs'), [armNames.map((a) => ARMS[a].host).join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
onCleanup(`upstream (pid ${upstreamChild.pid})`, () => stopPid(upstreamChild.pid))
const upstreamEarlyExit = once(upstreamChild, 'exit').then(([code, signal]) => {
  throw new Error(`upstream.mjs exited (${code ?? signal}) before listening`)
})
upstreamEarlyExit.catch(() => {}) // raced below; its later exit is no error
const [upstreamMsg] = await Promise.race([once(upstreamChild, 'message'), upstreamEarlyExit])

const pgServer = givenPg ? null : await startPostgres()
const redisServer = givenRedis ? null : await startRedis()

function urlsFor(arm) {
  const host = ARMS[arm].host
  const upstream = upstreamMsg.listeners.find((l) => l.host === host)
  return {
    pg: givenPg ? new URL(givenPg) : new URL(`postgres://${pgServer.user}@${host}:${pgServer.port}/${pgServer.database}`),
    redis: givenRedis ? new URL(givenRedis) : new URL(`redis://${host}:${redisServer.port}`),
    upstream: new URL(`http://${upstream.host}:${upstream.port}`),
  }
}

// ---- counting ----
/** The addresses a URL's host stands for, and its port: what connect() and ss see. */
async function endpoint(url, defaultPort) {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address)
  return { addresses, port: Number(url.port || defaultPort) }
}

/** Client TIME_WAIT entries towards an endpoint, as "local peer" lines (null without ss). */
function timeWait({ addresses, port }) {
  if (!hasSs) return null
  const dst = addresses.map((a) => `dst ${a}`).join(' or ')
  const r = spawnSync('ss', ['-Htan', 'state', 'time-wait', `( ( ${dst} ) and dport = :${port} )`], { encoding: 'utf8' })
  if (r.status !== 0) return null
  return new Set(r.stdout.split('\n').map((l) => l.trim().split(/\s+/).slice(-2).join(' ')).filter((l) => l !== ''))
}

/**
 * From `strace -f -y -e trace=socket,connect` output: TCP socket() calls, and per destination
 * "addr:port" the connect() calls and the sockets (inodes) first connected to it.
 */
function parseStrace(text) {
  let socketCalls = 0
  const firstDestination = new Map() // inode -> "addr:port"
  const connects = new Map() // "addr:port" -> count
  for (const line of text.split('\n')) {
    if (/\bsocket\(AF_INET6?, SOCK_STREAM/.test(line)) socketCalls++
    const m = /\bconnect\(\d+<(?:socket|TCP|TCPv6):\[(\d+)\]>, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\("([^"]+)"\)|[^}]*inet_pton\(AF_INET6, "([^"]+)")/.exec(line)
    if (!m) continue
    const [, inode, port, v4, v6] = m
    const dest = `${v4 ?? v6}:${port}`
    connects.set(dest, (connects.get(dest) ?? 0) + 1)
    if (!firstDestination.has(inode)) firstDestination.set(inode, dest)
  }
  const sockets = new Map()
  for (const dest of firstDestination.values()) sockets.set(dest, (sockets.get(dest) ?? 0) + 1)
  return { socketCalls, connects, sockets }
}

// ---- one run of the service ----
async function runArm(arm) {
  const urls = urlsFor(arm)
  const destinations = { pg: await endpoint(urls.pg, 5432), redis: await endpoint(urls.redis, 6379), upstream: await endpoint(urls.upstream, 80) }
  const snapshot = () => Object.fromEntries(Object.entries(destinations).map(([k, e]) => [k, timeWait(e)]))
  const before = snapshot()
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-microservice-'))
  const dropDir = onCleanup(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  const traceFile = join(dir, 'strace.txt')
  const node = [process.execPath, ...ARMS[arm].execArgv, join(HERE, 'service.mjs')]
  const [cmd, ...cmdArgs] = strace.ok ? ['strace', '-f', '-qq', '-y', '-e', 'trace=socket,connect', '-e', 'signal=none', '-o', traceFile, ...node] : node
  const env = {
    ...process.env,
    DATABASE_URL: urls.pg.href,
    REDIS_URL: urls.redis.href,
    UPSTREAM_URL: urls.upstream.origin,
    PORT: '0',
    HOST: '127.0.0.1',
    PG_MAX_USES: String(PG_MAX_USES),
  }
  const child = spawn(cmd, cmdArgs, { cwd: HERE, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = once(child, 'exit')
  const earlyExit = exited.then(([code, signal]) => {
    throw new Error(`service (${arm}) exited (${code ?? signal}) before listening: ${stderr.trim().slice(-1500)}`)
  })
  earlyExit.catch(() => {}) // raced below; its later exit is checked on its own
  const dropChild = onCleanup(`service (pid ${child.pid})`, () => stopPid(child.pid))
  try {
    const lines = createInterface({ input: child.stdout })
    const first = await Promise.race([once(lines, 'line').then(([l]) => l), earlyExit])
    lines.on('line', (l) => process.stdout.write(`[service ${arm}] ${l}\n`))
    const m = /listening on (http:\/\/\S+)/.exec(first)
    if (!m) throw new Error(`service (${arm}) printed "${first}" instead of "listening on http://..."`)
    const started = process.hrtime.bigint()
    const responses = await load(new URL(m[1]))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const beforeStop = snapshot()
    // SIGTERM to the service itself (strace's child, from /proc): strace exits with it.
    const servicePid = strace.ok ? tracedPid(child.pid) : child.pid
    if (servicePid === null) throw new Error(`no process traced by strace (pid ${child.pid})`)
    process.kill(servicePid, 'SIGTERM')
    // The service exits on its own once its server, pool and clients are closed; a bound on it, so
    // that something holding its event loop open fails the run instead of hanging it.
    const hung = setTimeout(() => {
      stderr += `\nrun.mjs: the service did not exit within ${EXIT_BOUND_MS} ms of SIGTERM; killed\n`
      stopPid(servicePid)
      stopPid(child.pid)
    }, EXIT_BOUND_MS)
    const [code, signal] = await exited
    clearTimeout(hung)
    if (code !== 0) throw new Error(`service (${arm}) exited (${code ?? signal}) after SIGTERM: ${stderr.trim().slice(-1500)}`)
    const after = snapshot()
    const trace = strace.ok ? parseStrace(readFileSync(traceFile, 'utf8')) : null
    const perDestination = {}
    const sum = (counts, { addresses, port }) => addresses.reduce((n, a) => n + (counts.get(`${a}:${port}`) ?? 0), 0)
    for (const [name, e] of Object.entries(destinations)) {
      perDestination[name] = {
        address: e.addresses.map((a) => `${a}:${e.port}`).join(' '),
        connects: trace ? sum(trace.connects, e) : null,
        sockets: trace ? sum(trace.sockets, e) : null,
        timeWait: newEntries(before[name], after[name]),
        timeWaitBeforeStop: newEntries(before[name], beforeStop[name]),
      }
    }
    const ok = responses.filter((r) => r.status === 200).length
    return { arm, seconds, ok, failed: responses.length - ok, responses, socketCalls: trace?.socketCalls ?? null, perDestination, stderr: stderr.trim() }
  } finally {
    dropChild()
    dropDir()
  }
}

/** How many TIME_WAIT entries `now` has that `then` had not (null without ss). */
function newEntries(then, now) {
  return then && now ? [...now].filter((entry) => !then.has(entry)).length : null
}

/** The pid strace runs (its only child). */
function tracedPid(stracePid) {
  try {
    const children = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(/\s+/).map(Number)
    return children.find((p) => p > 0) ?? null
  } catch {
    return null
  }
}

/** REQUESTS GETs /item/<id>, CONCURRENCY at a time, over keep-alive connections to the service. */
async function load(base) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const responses = new Array(REQUESTS)
  let next = 1
  const worker = async () => {
    while (next <= REQUESTS) {
      const id = next++
      responses[id - 1] = await get(agent, new URL(`/item/${id}`, base)).catch((err) => ({ id, status: 0, body: err.message }))
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  agent.destroy()
  return responses
}

function get(agent, url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 30_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ id: Number(url.pathname.split('/').pop()), status: res.statusCode, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from the service in 30 s (${url.pathname})`)))
    req.on('error', reject)
  })
}

// ---- both runs, and the table ----
const results = {}
for (const arm of armNames) results[arm] = await runArm(arm)

let same = null
if (results.plain && results.auto) {
  const differing = results.plain.responses.filter((r, i) => r.status !== results.auto.responses[i].status || r.body !== results.auto.responses[i].body)
  same = { identical: REQUESTS - differing.length, of: REQUESTS, firstDifference: differing[0] ? { plain: differing[0], auto: results.auto.responses[differing[0].id - 1] } : null }
}

const cell = (x) => (x === null || x === undefined ? 'n/a' : String(x))
const rows = [['', ...armNames.map((a) => ARMS[a].label)]]
rows.push(['responses 200', ...armNames.map((a) => `${results[a].ok}/${REQUESTS}`)])
rows.push([strace.ok ? 'wall time under strace, s' : 'wall time, s', ...armNames.map((a) => results[a].seconds.toFixed(2))])
for (const name of ['pg', 'redis', 'upstream']) {
  rows.push([`${name}: connect() calls`, ...armNames.map((a) => cell(results[a].perDestination[name].connects))])
  rows.push([`${name}: socket() calls`, ...armNames.map((a) => cell(results[a].perDestination[name].sockets))])
  rows.push([`${name}: client TIME_WAIT`, ...armNames.map((a) => cell(results[a].perDestination[name].timeWait))])
}
rows.push(['all TCP socket() calls', ...armNames.map((a) => cell(results[a].socketCalls))])
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
const describe = (what, given, started) => (given ? `${what} at ${given.host} (given)` : `${what} ${started} (started here)`)
console.log(`\nmicroservice: ${REQUESTS} requests, ${CONCURRENCY} in flight; pg.Pool max 4, maxUses ${PG_MAX_USES}; an ioredis client per request; fetch() to an upstream answering Connection: close`)
console.log(`${describe('PostgreSQL', givenPg, pgServer?.version)}; ${describe('redis-server', givenRedis, redisServer?.version)}; Node ${process.version}`)
if (armNames.includes('auto')) console.log(`with auto: ${process.env.FDRECYCLE_OPTIONS ? `FDRECYCLE_OPTIONS=${process.env.FDRECYCLE_OPTIONS}` : "the recycler's defaults (no FDRECYCLE_OPTIONS)"}`)
console.log(`socket()/connect(): strace -f -y of the service (socket() counted under the backend each socket first connected to); TIME_WAIT: ss, entries towards each backend new after the run\n`)
for (const r of rows) console.log(r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('   '))
console.log('')
for (const arm of armNames) console.log(`${ARMS[arm].label.padEnd(9)} GET /item/1 -> ${results[arm].responses[0].status} ${results[arm].responses[0].body}`)
if (same) console.log(`responses identical in both runs: ${same.identical} of ${same.of}`)
for (const arm of armNames) if (results[arm].stderr) console.log(`\n[service ${arm} stderr]\n${results[arm].stderr.slice(-2000)}`)

if (args.json) {
  const strip = (r) => ({ ...r, responses: undefined })
  writeFileSync(args.json, `${JSON.stringify({
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    pgMaxUses: PG_MAX_USES,
    node: process.version,
    fdrecycleOptions: process.env.FDRECYCLE_OPTIONS ?? null,
    strace: strace.ok,
    ss: hasSs,
    backends: { pg: givenPg ? 'given' : `PostgreSQL ${pgServer.version}`, redis: givenRedis ? 'given' : `redis-server ${redisServer.version}` },
    arms: Object.fromEntries(armNames.map((a) => [a, strip(results[a])])),
    same,
  }, null, 2)}\n`)
}
process.exit(0)
