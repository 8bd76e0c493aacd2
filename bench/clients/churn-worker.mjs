#!/usr/bin/env node
// The Node client under test. One long-lived process (as a service is: the JIT warm, one recycler
// for its lifetime) that runs one measured batch of connections per request from bench/index.mjs
// (IPC), or one batch from the command line for strace:
//   node churn-worker.mjs --once '{"kind":"tcp","mode":"plain","n":1000,"inFlight":16,"target":{"host":"127.0.0.1","port":5000}}'
//
// Each kind is written the way a user writes it; the two modes differ only where a user's code
// would (plain: `net.connect({ host, port })`; recycled: `recycler.createConnection({ host, port })`;
// pg's `stream: pgStream(recycler)`; mysql2's `stream: mysqlStream(recycler)`; postgres.js's
// `socket: postgresSocket(recycler)`; ioredis's `Connector: recycledConnector(recycler)`;
// node:http's `agent: new RecycledAgent(...)` instead of `new http.Agent(...)`).
import { readdirSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { SocketRecycler } from '@fdrecycle/core'

let recycler = null
/** One recycler per worker: fds are reused across batches, as in a long-running service. */
function theRecycler() {
  // FDRECYCLE_BENCH_OPTIONS='{"finDelayMs":0}' tries other recycler options (experiments only).
  recycler ??= new SocketRecycler(process.env.FDRECYCLE_BENCH_OPTIONS ? JSON.parse(process.env.FDRECYCLE_BENCH_OPTIONS) : undefined)
  return recycler
}

const kinds = {
  /** connect, read the greeting until the server's EOF, close (the server closes first). */
  async tcp(mode, { host, port }) {
    const rec = mode === 'recycled' ? theRecycler() : null
    const connect = rec ? () => rec.createConnection({ host, port }) : () => net.connect({ host, port })
    return (done) => {
      const socket = connect()
      let bytes = 0
      let failed = null
      socket.on('data', (chunk) => {
        bytes += chunk.length
      })
      socket.on('error', (err) => {
        failed = err
      })
      socket.on('close', () => done(failed ?? (bytes === 0 ? new Error('no greeting') : null)))
    }
  },

  /**
   * The goodbye pattern (pg Terminate, Redis QUIT, SMTP QUIT...): send a request, read the reply,
   * write a goodbye line and end() at once; the server closes after reading it.
   */
  async goodbye(mode, { host, port, noDelay = false }) {
    const rec = mode === 'recycled' ? theRecycler() : null
    const connect = rec ? () => rec.createConnection({ host, port }) : () => net.connect({ host, port })
    return (done) => {
      const socket = connect()
      if (noDelay) socket.setNoDelay(true) // as pg, ioredis and node:http do
      let got = ''
      let failed = null
      socket.setEncoding('utf8')
      socket.on('connect', () => socket.write('GET key\n'))
      socket.on('data', (d) => {
        got += d
        if (got === '+OK GET key\n') socket.end('QUIT\n')
      })
      socket.on('error', (err) => {
        failed = err
      })
      socket.on('close', () => done(failed ?? (got.startsWith('+OK GET key\n') ? null : new Error(`unexpected reply ${JSON.stringify(got)}`))))
    }
  },

  /** pg.Client: connect, SELECT 1, end() (pg sends Terminate; the server closes). */
  async pg(mode, { host, port, user, database }) {
    const { default: pg } = await import('pg')
    const config = { host, port, user, database }
    if (mode === 'recycled') {
      const { pgStream } = await import('@fdrecycle/pg-adapter')
      config.stream = pgStream(theRecycler())
    }
    return (done) => {
      const client = new pg.Client(config)
      client.connect()
        .then(() => client.query('SELECT 1'))
        .then(() => client.end())
        .then(() => done(null), (err) => {
          client.end().catch(() => {})
          done(err)
        })
    }
  },

  /** mysql2: createConnection, SELECT 1, end() (COM_QUIT; the server closes). */
  async mysql(mode, { host, port, user, password, database }) {
    const { default: mysql } = await import('mysql2/promise')
    const config = { host, port, user, password, database }
    if (mode === 'recycled') {
      const { mysqlStream } = await import('@fdrecycle/mysql-adapter')
      config.stream = mysqlStream(theRecycler())
    }
    return (done) => {
      mysql.createConnection(config)
        .then(async (connection) => {
          try {
            await connection.query('SELECT 1')
          } finally {
            await connection.end()
          }
        })
        .then(() => done(null), done)
    }
  },

  /**
   * postgres.js: postgres(), SELECT 1, sql.end() (Terminate; the server closes). Without
   * fetch_types: its catalog query on every new instance would dominate what is measured.
   */
  async postgresjs(mode, { host, port, user, database }) {
    const { default: postgres } = await import('postgres')
    const options = { host, port, user, database, max: 1, fetch_types: false, onnotice: () => {} }
    if (mode === 'recycled') {
      const { postgresSocket } = await import('@fdrecycle/postgresjs-adapter')
      options.socket = postgresSocket(theRecycler())
    }
    return (done) => {
      const sql = postgres(options)
      sql`SELECT 1`
        .then(() => sql.end(), async (err) => {
          await sql.end({ timeout: 0 })
          throw err
        })
        .then(() => done(null), done)
    }
  },

  /** ioredis: connect, GET, quit() (Redis closes after QUIT's reply); done at 'end'. */
  async redis(mode, { host, port }) {
    const { default: Redis } = await import('ioredis')
    const options = { host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }
    if (mode === 'recycled') {
      const { recycledConnector } = await import('@fdrecycle/redis-adapter')
      options.Connector = recycledConnector(theRecycler())
    }
    return (done) => {
      const redis = new Redis(options)
      let failed = null
      redis.on('error', (err) => {
        failed ??= err
      })
      redis.once('end', () => done(failed))
      redis.connect()
        .then(() => redis.get('fdrecycle-bench'))
        .then(() => redis.quit())
        .catch((err) => {
          failed ??= err
          redis.disconnect()
        })
    }
  },

  /** node:http GET through an Agent without keep-alive; the server answers `Connection: close`. */
  async http(mode, { host, port, path = '/hello' }) {
    let agent
    if (mode === 'recycled') {
      const { RecycledAgent } = await import('@fdrecycle/http-adapter')
      agent = new RecycledAgent({ recycler: theRecycler(), keepAlive: false })
    } else {
      agent = new http.Agent({ keepAlive: false })
    }
    return (done) => {
      const req = http.get({ host, port, path, agent }, (res) => {
        res.resume()
        res.on('end', () => done(res.statusCode === 200 ? null : new Error(`HTTP ${res.statusCode}`)))
        res.on('error', done)
      })
      req.on('error', done)
    }
  },
}

const factories = new Map()

/**
 * Runs `n` connections of one kind and mode, `inFlight` at a time; measures wall time, this
 * process's CPU (process.cpuUsage) and each connection's latency.
 */
async function runBatch({ kind, mode, n, inFlight, target }) {
  if (!kinds[kind]) throw new Error(`unknown kind ${kind}`)
  if (mode !== 'plain' && mode !== 'recycled') throw new Error(`unknown mode ${mode}`)
  const key = `${kind}:${mode}:${JSON.stringify(target)}`
  let one = factories.get(key)
  if (!one) {
    one = await kinds[kind](mode, target)
    factories.set(key, one)
  }
  const before = recycler?.stats()
  const latencies = new Float64Array(n)
  const errors = {}
  let failed = 0
  let started = 0
  let finished = 0
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await new Promise((resolve) => {
    const launch = () => {
      const i = started++
      const s = process.hrtime.bigint()
      let settled = false
      one((err) => {
        if (settled) return
        settled = true
        latencies[i] = Number(process.hrtime.bigint() - s) / 1e3
        if (err) {
          failed++
          const code = err.code ?? err.message.slice(0, 60)
          errors[code] = (errors[code] ?? 0) + 1
        }
        finished++
        if (finished === n) resolve()
        else if (started < n) launch()
      })
    }
    for (let i = 0; i < Math.min(inFlight, n); i++) launch()
  })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  const sorted = Array.from(latencies).sort((a, b) => a - b)
  const pick = (q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]
  const after = recycler?.stats()
  return {
    kind,
    mode,
    n,
    inFlight,
    completed: n - failed,
    failed,
    errors,
    seconds,
    perSecond: n / seconds,
    cpuUserUs: cpu.user,
    cpuSysUs: cpu.system,
    cpuPerConnUs: (cpu.user + cpu.system) / n,
    latencyUs: { p50: pick(0.5), p99: pick(0.99), max: sorted[n - 1] },
    rssMB: process.memoryUsage().rss / 2 ** 20,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    fds: readdirSync('/proc/self/fd').length - 1, // minus the fd of the readdir itself
    recycler: mode === 'recycled' && after ? delta(before, after) : null,
  }
}

function delta(before, after) {
  const out = {}
  for (const [k, v] of Object.entries(after)) out[k] = typeof v === 'number' && before && typeof before[k] === 'number' && !['idle', 'active', 'draining'].includes(k) ? v - before[k] : v
  return out
}

async function handle(msg) {
  switch (msg.cmd) {
    case 'run':
      return runBatch(msg)
    case 'stats':
      return { stats: recycler?.stats() ?? null, fds: readdirSync('/proc/self/fd').length - 1 }
    case 'exit':
      if (recycler) await recycler.close()
      setImmediate(() => process.exit(0))
      return { ok: true }
    default:
      throw new Error(`unknown command ${msg.cmd}`)
  }
}

/**
 * --once with `warmup` runs that many connections first; with `profile` (a file path), the V8 CPU
 * profile of the measured batch alone (not start-up, not the warm-up) goes to that file
 * (bench/profile.mjs).
 */
async function runOnce(msg) {
  if (msg.warmup > 0) await runBatch({ ...msg, n: msg.warmup })
  if (!msg.profile) return runBatch(msg)
  const { Session } = await import('node:inspector')
  const { writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))))
  await post('Profiler.enable')
  if (msg.profileIntervalUs) await post('Profiler.setSamplingInterval', { interval: msg.profileIntervalUs })
  await post('Profiler.start')
  const result = await runBatch(msg)
  const { profile } = await post('Profiler.stop')
  session.disconnect()
  writeFileSync(msg.profile, JSON.stringify(profile))
  return result
}

const onceArg = process.argv.indexOf('--once')
if (onceArg >= 0) {
  const result = await runOnce(JSON.parse(process.argv[onceArg + 1]))
  if (recycler) await recycler.close()
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0) // failed connections are a result (port exhaustion counts them), not a crash
} else if (process.send) {
  process.on('message', (msg) => {
    handle(msg).then(
      (reply) => process.send(reply),
      (err) => process.send({ error: err.message, stack: err.stack }),
    )
  })
  process.on('disconnect', () => process.exit(0))
} else {
  process.stderr.write('churn-worker: run by bench/index.mjs (IPC) or with --once <json>\n')
  process.exit(2)
}
