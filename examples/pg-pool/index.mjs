#!/usr/bin/env node
// A pg.Pool with a short idleTimeoutMillis, fed in bursts: each burst opens new connections, as an
// app with bursty traffic does. Run once with pg's own sockets and once with `stream: pgStream()`,
// against the PostgreSQL you name with --url, and compare what each left behind.
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { SocketRecycler, isRecyclingSupported, pgStream } from '@fdrecycle/pg-adapter'

const usage = `usage: node index.mjs --url postgres://USER[:PASSWORD]@HOST:PORT/DB [--bursts N] [--per-burst N] [--max N] [--ssl]
  --url        the PostgreSQL to use (or PGURL / DATABASE_URL in the environment); nothing is started
  --bursts     bursts of queries, the pool emptied between them (default 100)
  --per-burst  queries per burst (default 16)
  --max        pool size (default 4)
  --ssl        TLS over the recycled sockets (ssl: { rejectUnauthorized: false }: any certificate)`

let args
try {
  args = parseArgs({
    options: {
      url: { type: 'string' },
      bursts: { type: 'string', default: '100' },
      'per-burst': { type: 'string', default: '16' },
      max: { type: 'string', default: '4' },
      ssl: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  console.error(`${err.message}\n${usage}`)
  process.exit(2)
}
const url = args.url ?? process.env.PGURL ?? process.env.DATABASE_URL
if (args.help || !url) {
  console.error(usage)
  process.exit(args.help ? 0 : 2)
}
const count = (name) => {
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer\n${usage}`)
    process.exit(2)
  }
  return n
}
const BURSTS = count('bursts')
const PER_BURST = count('per-burst')
const MAX = count('max')

/** Client-side TIME_WAIT entries among the given "localPort->remotePort" tuples (`ss`). */
function timeWaits(tuples, port) {
  try {
    const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( dport = :${port} )`], { encoding: 'utf8' })
    const now = new Set(out.split('\n').map((l) => /:(\d+)\s+\S*:(\d+)\s*$/.exec(l.trim())).filter(Boolean).map((m) => `${m[1]}->${m[2]}`))
    return [...tuples].filter((t) => now.has(t)).length
  } catch {
    return 'n/a (no ss)'
  }
}

async function run(label, stream) {
  const pool = new pg.Pool({
    connectionString: url,
    ...(args.ssl ? { ssl: { rejectUnauthorized: false } } : {}),
    ...(stream ? { stream } : {}), // <- the one line the adapter adds
    max: MAX,
    idleTimeoutMillis: 5,
  })
  const tuples = new Set()
  let port = 0
  let connected = 0
  let removed = 0
  let onRemove = null
  pool.on('connect', (client) => {
    connected++
    const s = client.connection.stream
    const tcp = s._parent ?? s // under TLS, the TLS socket wraps the TCP one
    if (tcp.remotePort) {
      port = tcp.remotePort
      tuples.add(`${tcp.localPort}->${tcp.remotePort}`)
    }
  })
  pool.on('remove', () => {
    removed++
    onRemove?.()
  })
  pool.on('error', (err) => console.error(`  ${label}: idle client error: ${err.message}`))
  const t0 = performance.now()
  let queries = 0
  try {
    for (let b = 0; b < BURSTS; b++) {
      const results = await Promise.all(
        Array.from({ length: PER_BURST }, (_, i) => pool.query('SELECT $1::int AS n', [b * PER_BURST + i])),
      )
      results.forEach((r, i) => {
        if (r.rows[0].n !== b * PER_BURST + i) throw new Error(`wrong result ${r.rows[0].n}`)
      })
      queries += results.length
      // idle until idleTimeoutMillis has removed every client: the next burst connects anew
      await new Promise((resolve) => {
        onRemove = () => removed === connected && resolve()
        onRemove()
      })
    }
  } finally {
    await pool.end()
  }
  const ms = performance.now() - t0
  return { queries, connections: connected, ms, tuples, port }
}

console.log(`pg-pool example: ${BURSTS} bursts of ${PER_BURST} queries, pool max ${MAX}, idleTimeoutMillis 5${args.ssl ? ', TLS' : ''}`)
console.log(`recycling supported here: ${isRecyclingSupported()}\n`)

// A recycler of our own, to read its stats and close it at the end (pgStream() alone would use
// the process-wide defaultRecycler()).
const recycler = new SocketRecycler()
let plain, recycled
try {
  plain = await run('plain', undefined)
  recycled = await run('recycled', pgStream(recycler))
} catch (err) {
  console.error(`error: ${err.message}${err.code ? ` (${err.code})` : ''}`)
  await recycler.close()
  process.exit(1)
}
// The release protocol finishes after pool.end(): wait for it (bounded) before counting.
for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
  const s = recycler.stats()
  if (s.active === 0 && s.draining === 0) break
  await new Promise((resolve) => setTimeout(resolve, 10))
}
const stats = recycler.stats()
const tw = { plain: timeWaits(plain.tuples, plain.port), recycled: timeWaits(recycled.tuples, recycled.port) }
await recycler.close()

const row = (k, a, b) => console.log(`  ${k.padEnd(34)} ${String(a).padStart(10)} ${String(b).padStart(10)}`)
row('', 'plain', 'recycled')
row('queries (all results checked)', plain.queries, recycled.queries)
row('connections made', plain.connections, stats.connections)
row('fds (sockets) created', plain.connections, stats.fdsCreated)
row('connections on a reused fd', 0, stats.reusedConnections)
row('client TIME_WAIT left behind', tw.plain, tw.recycled)
row('time (ms)', plain.ms.toFixed(0), recycled.ms.toFixed(0))
if (stats.fdsCreated === 0 && stats.connections > 0) {
  console.log('\n  (a Unix-socket host: those connections pass through to plain sockets, nothing to recycle)')
}
