#!/usr/bin/env node
// The reverse proxy (examples/reverse-proxy) under a real load generator (autocannon), with and
// without recycling, in interleaved A/B rounds. Prints one JSON document on stdout; progress on
// stderr. Starts everything itself as child processes and stops it all, also on failure:
//   upstreams: Debian's nginx (keepalive_requests 1: every response `Connection: close`), or Node
//              servers doing the same when nginx is missing (--upstream node forces them);
//   proxies:   two, one per mode, each balancing over its own two upstream ports (so TIME_WAIT
//              left by one mode never touches the other's 4-tuples).
// Needs the packages built (`npm run build` at the root).
//
//   node bench/http-proxy.mjs [--rounds 5] [--duration 3] [--warmup 1] [--connections 1,16]
//                             [--upstream nginx|node] [--path /hello]
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const log = (message) => process.stderr.write(`[http-proxy] ${message}\n`)

// ---- the Node upstream, when this file runs as a child with --role upstream ------------------
if (process.argv.includes('--role')) {
  const body = 'hello from nginx\n' // same bytes as nginx's /hello
  const ports = []
  for (let i = 0; i < Number(process.argv[process.argv.indexOf('--count') + 1] ?? 4); i++) {
    const server = http.createServer((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, connection: 'close' })
      res.end(body)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    ports.push(server.address().port)
  }
  process.stdout.write(`ports ${JSON.stringify(ports)}\n`)
  process.on('SIGTERM', () => process.exit(0))
  await new Promise(() => {})
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '1,16' },
    upstream: { type: 'string', default: 'nginx' },
    path: { type: 'string', default: '/hello' },
  },
})
const rounds = positive('rounds', args.rounds)
const duration = positive('duration', args.duration)
const warmup = Number(args.warmup)
const connectionCounts = args.connections.split(',').map((c) => positive('connections', c))
if (!['nginx', 'node'].includes(args.upstream)) fail(`--upstream must be nginx or node, got '${args.upstream}'`)

function positive(name, value) {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) fail(`--${name} expects positive integers, got '${value}'`)
  return n
}

function fail(message) {
  log(message)
  process.exit(2)
}

for (const pkg of ['core', 'http-adapter']) {
  if (!existsSync(join(root, 'packages', pkg, 'dist', 'esm', 'index.js'))) {
    fail(`packages/${pkg} is not built: run \`npm run build\` at the repository root first`)
  }
}
const autocannon = require('autocannon')

const children = []
let nginx = null
let cleaning = null

async function cleanup() {
  cleaning ??= (async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    }
    await nginx?.stop()
  })()
  return cleaning
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))
process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)))

/** Spawns a child and resolves with the first stdout line matching `pattern` (its match). */
async function startChild(argv, pattern, what) {
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s`)), 15_000)
    child.stdout.on('data', (d) => {
      out += d
      const m = pattern.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ child, match: m, output: () => out })
      }
    })
    child.once('exit', (code) => reject(new Error(`${what} exited early (${code}): ${out}`)))
  })
}

async function startUpstreams() {
  if (args.upstream === 'nginx') {
    const { nginxBinary, startNginx } = await import('../scripts/nginx.mjs')
    if (nginxBinary()) {
      const close = { keepaliveRequests: 1 }
      nginx = await startNginx({ servers: { plainA: close, plainB: close, recycledA: close, recycledB: close } })
      const p = nginx.ports
      return { kind: 'nginx', version: nginx.version, plain: [p.plainA, p.plainB], recycled: [p.recycledA, p.recycledB] }
    }
    log('nginx not found: Node upstreams instead (Debian: apt-get install nginx)')
  }
  const { match } = await startChild([fileURLToPath(import.meta.url), '--role', 'upstream', '--count', '4'], /ports (\[.*\])\n/, 'the Node upstream')
  const ports = JSON.parse(match[1])
  return { kind: 'node', version: process.version, plain: ports.slice(0, 2), recycled: ports.slice(2) }
}

async function startProxy(mode, ports) {
  const argv = [join(root, 'examples', 'reverse-proxy', 'index.mjs'), '--listen', '127.0.0.1:0']
  for (const port of ports) argv.push('--upstream', `http://127.0.0.1:${port}`)
  if (mode === 'plain') argv.push('--no-recycle')
  const { child, match } = await startChild(argv, /listening on (http:\/\/\S+)/, `the ${mode} proxy`)
  return { mode, pid: child.pid, url: match[1], ports }
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(JSON.parse(body)))
    }).on('error', reject)
  })
}

/** CPU time (user + system, µs) a process has used so far: /proc/<pid>/stat fields 14 and 15. */
function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS
  } catch {
    return NaN
  }
}
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

async function load(proxy, connections, seconds) {
  const cpu0 = cpuMicros(proxy.pid)
  const result = await autocannon({ url: `${proxy.url}${args.path}`, connections, duration: seconds, pipelining: 1 })
  const cpu = cpuMicros(proxy.pid) - cpu0
  return {
    rps: result.requests.average,
    p99Ms: result.latency.p99,
    meanMs: result.latency.average,
    requests: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
    // the proxy's own CPU per request: steadier than throughput on a shared machine
    proxyCpuUsPerRequest: result.requests.total > 0 ? Math.round(cpu / result.requests.total) : null,
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function timeWait(ports) {
  try {
    const filter = ports.map((p) => `dport = :${p}`).join(' or ')
    return execFileSync('ss', ['-Htan', 'state', 'time-wait', `( ${filter} )`], { encoding: 'utf8' }).split('\n').filter((l) => l.trim()).length
  } catch {
    return null
  }
}

const round2 = (n) => Math.round(n * 100) / 100

try {
  const upstreams = await startUpstreams()
  log(`upstreams: ${upstreams.kind} ${upstreams.version}, plain ${upstreams.plain}, recycled ${upstreams.recycled}`)
  const plain = await startProxy('plain', upstreams.plain)
  const recycled = await startProxy('recycled', upstreams.recycled)
  const results = []
  for (const connections of connectionCounts) {
    if (warmup > 0) {
      log(`warm-up, ${connections} connection(s)`)
      await load(plain, connections, warmup)
      await load(recycled, connections, warmup)
    }
    const perRound = []
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [plain, recycled] : [recycled, plain]
      const out = {}
      for (const proxy of order) out[proxy.mode] = await load(proxy, connections, duration)
      const ratio = out.recycled.rps / out.plain.rps
      perRound.push({ round: r + 1, first: order[0].mode, plain: out.plain, recycled: out.recycled, ratio: round2(ratio) })
      const line = (x) => `${x.rps.toFixed(0)} req/s p99 ${x.p99Ms} ms ${x.proxyCpuUsPerRequest} µs cpu/req`
      log(`${connections} conn, round ${r + 1}: plain ${line(out.plain)} | recycled ${line(out.recycled)} | ratio ${ratio.toFixed(3)}`)
    }
    const ratios = perRound.map((x) => x.ratio)
    const med = (mode, key) => round2(median(perRound.map((x) => x[mode][key])))
    results.push({
      connections,
      rounds: perRound,
      median: {
        plain: { rps: med('plain', 'rps'), p99Ms: med('plain', 'p99Ms'), proxyCpuUsPerRequest: med('plain', 'proxyCpuUsPerRequest') },
        recycled: { rps: med('recycled', 'rps'), p99Ms: med('recycled', 'p99Ms'), proxyCpuUsPerRequest: med('recycled', 'proxyCpuUsPerRequest') },
      },
      ratio: { median: round2(median(ratios)), min: Math.min(...ratios), max: Math.max(...ratios) },
    })
  }
  const proxies = {}
  for (const proxy of [plain, recycled]) {
    const stats = await getJson(`${proxy.url}/_fdrecycle/stats`)
    proxies[proxy.mode] = {
      requests: stats.requests,
      badGateway: stats.badGateway,
      openFds: stats.openFds,
      upstreamConnections: stats.recycler.connections,
      fdsCreated: stats.recycler.fdsCreated,
      fdsClosed: stats.recycler.fdsClosed,
      peerClosedFirst: stats.recycler.peerClosedFirst,
      finSentFirst: stats.recycler.finSentFirst,
      clientTimeWait: timeWait(proxy.ports),
    }
  }
  const report = {
    bench: 'http-proxy',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    upstream: { kind: upstreams.kind, version: upstreams.version, closesEveryConnection: true, path: args.path },
    config: { rounds, durationSec: duration, warmupSec: warmup, connections: connectionCounts, upstreamsPerProxy: 2, loadGenerator: `autocannon ${require('autocannon/package.json').version}` },
    results,
    proxies,
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
} catch (err) {
  log(`failed: ${err.stack ?? err}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
