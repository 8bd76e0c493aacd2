// A small service as it is written without fdrecycle in mind: node:http, a pg.Pool, a short-lived
// ioredis client per request, and fetch() to an upstream that answers `Connection: close`. Nothing
// here knows about fdrecycle: run.mjs starts this file plain and with `node --import @fdrecycle/auto`.
//
//   DATABASE_URL  postgres://user@host:port/db
//   REDIS_URL     redis://host:port
//   UPSTREAM_URL  http://host:port
//   PORT          where to listen (default 0: a free port); HOST (default 127.0.0.1)
//   PG_MAX_USES   how many queries a pooled pg connection serves before the pool replaces it (default 5)
//
// GET /item/<id> (id: 1 to 1000000) answers { id, pg, redis, upstream }: a query, a SET/GET and an
// upstream call, each computed from the id so that two runs give the same answers. It prints
// `listening on http://host:port` once it accepts requests. On SIGTERM/SIGINT it stops taking
// requests and ends the pool, and Node exits once nothing is left open (no process.exit(): a
// connection still closing would be cut short by it).
import http from 'node:http'
import Redis from 'ioredis'
import pg from 'pg'

function required(name) {
  const value = process.env[name]
  if (!value) {
    console.error(`service: ${name} is not set (see the top of service.mjs)`)
    process.exit(2)
  }
  return value
}

const databaseUrl = required('DATABASE_URL')
const redisUrl = required('REDIS_URL')
const upstreamUrl = required('UPSTREAM_URL')
const maxUses = Number(process.env.PG_MAX_USES ?? 5)
if (!Number.isInteger(maxUses) || maxUses < 1) {
  console.error(`service: PG_MAX_USES must be a positive integer, got ${process.env.PG_MAX_USES}`)
  process.exit(2)
}

// maxUses: every connection is replaced after a few queries (as deployments do to spread load
// after a failover or to bound a backend's memory), so connections churn under steady load.
const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, maxUses, idleTimeoutMillis: 1000 })
pool.on('error', (err) => console.error(`service: idle pg client: ${err.message}`))

async function fromPg(id) {
  const { rows } = await pool.query('SELECT $1::int * 2 AS doubled', [id])
  return rows[0].doubled
}

// A client per request, quit() after: what a handler that "just opens Redis" does.
async function fromRedis(id) {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on('error', () => {}) // the command's promise carries the error
  try {
    await redis.connect()
    await redis.set(`item:${id}`, `value-${id}`, 'EX', 60)
    return await redis.get(`item:${id}`)
  } finally {
    await redis.quit().catch(() => redis.disconnect())
  }
}

async function fromUpstream(id) {
  const res = await fetch(`${upstreamUrl}/price/${id}`)
  if (!res.ok) throw new Error(`upstream answered ${res.status}`)
  return (await res.json()).price
}

const server = http.createServer((req, res) => {
  const m = /^\/item\/(\d{1,7})$/.exec(req.url ?? '')
  const id = m ? Number(m[1]) : NaN
  if (req.method !== 'GET' || !(id >= 1 && id <= 1_000_000)) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"GET /item/<1..1000000>"}')
    return
  }
  Promise.all([fromPg(id), fromRedis(id), fromUpstream(id)]).then(
    ([pgValue, redisValue, upstream]) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, pg: pgValue, redis: redisValue, upstream }))
    },
    (err) => {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ id, error: err.message }))
    },
  )
})

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`listening on http://${address}:${port}`)
})

let stopping = false
function stop() {
  if (stopping) return
  stopping = true
  server.close()
  server.closeIdleConnections()
  pool.end().catch((err) => {
    console.error(`service: pool.end(): ${err.message}`)
    process.exitCode = 1
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
