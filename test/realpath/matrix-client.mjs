// The client side of the real-path matrix, run inside the client namespace:
// `ip netns exec A node matrix-client.mjs`. It drives the real clients (pg, ioredis, node:http and
// node:https, undici, postgres.js, mysql2) as an application would, plain or through the *built* adapters (their dist,
// as users import them), and reports what each run did.
//
// Adding a client: one entry in CLIENTS, `session(target, ctx)` runs one connection from open to
// close, with `ctx.recycler` set in recycled mode (null in plain mode).
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { SocketRecycler } from '@fdrecycle/core'
import { RecycledAgent, RecycledHttpsAgent, undiciConnector } from '@fdrecycle/http-adapter'
import { mysqlStream } from '@fdrecycle/mysql-adapter'
import { pgStream } from '@fdrecycle/pg-adapter'
import { postgresSocket } from '@fdrecycle/postgresjs-adapter'
import { recycledConnector } from '@fdrecycle/redis-adapter'
import Redis from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import postgres from 'postgres'
import { Agent as UndiciAgent, request as undiciRequest } from 'undici'
import { serve } from '../faults/agent-protocol.mjs'

/** Reads a whole HTTP response body; resolves with its size. */
function readBody(res) {
  return new Promise((resolve, reject) => {
    let size = 0
    res.on('data', (chunk) => (size += chunk.length))
    res.once('end', () => resolve(size))
    res.once('error', reject)
  })
}

function nodeHttpGet(mod, target, agent) {
  return new Promise((resolve, reject) => {
    const req = mod.get({ host: target.host, port: target.port, path: '/hello', agent }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`))
      readBody(res).then(resolve, reject)
    })
    req.once('error', reject)
  })
}

/**
 * One entry per client and TLS mode. `open(target, ctx)` builds what a run shares (an Agent, a
 * dispatcher), `session(target, ctx, shared)` is one connection, `close(shared)` ends the run.
 */
const CLIENTS = {
  pg: {
    async session(target, ctx) {
      const client = new pg.Client({
        host: target.host,
        port: target.port,
        user: 'postgres',
        database: 'postgres',
        ssl: target.tls ? { ca: target.ca } : false,
        ...(ctx.recycler ? { stream: pgStream(ctx.recycler) } : {}),
      })
      await client.connect()
      try {
        const { rows } = await client.query('SELECT 1 AS one')
        if (rows[0]?.one !== 1) throw new Error(`unexpected rows ${JSON.stringify(rows)}`)
      } finally {
        // Terminate, then PostgreSQL closes first
        await client.end()
      }
    },
  },
  ioredis: {
    async session(target, ctx) {
      const url = `${target.tls ? 'rediss' : 'redis'}://${target.host}:${target.port}`
      const redis = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        ...(target.tls ? { tls: { ca: target.ca } } : {}),
        ...(ctx.recycler ? { Connector: recycledConnector(ctx.recycler) } : {}),
      })
      const ended = new Promise((resolve) => redis.once('end', resolve))
      redis.on('error', () => {}) // the session's awaits report errors
      await redis.connect()
      const pong = await redis.ping()
      if (pong !== 'PONG') throw new Error(`PING answered ${pong}`)
      // An application's usual goodbye; the recycled connector sends QUIT first (Redis closes first)
      redis.disconnect()
      await ended
    },
  },
  'postgres.js': {
    async session(target, ctx) {
      const sql = postgres({
        host: target.host,
        port: target.port,
        user: 'postgres',
        database: 'postgres',
        max: 1,
        ssl: target.tls ? { ca: target.ca } : false,
        ...(ctx.recycler ? { socket: postgresSocket(ctx.recycler) } : {}),
      })
      try {
        const rows = await sql`SELECT 1 AS one`
        if (rows[0]?.one !== 1) throw new Error(`unexpected rows ${JSON.stringify(rows)}`)
      } finally {
        // Terminate, then PostgreSQL closes first
        await sql.end()
      }
    },
  },
  mysql2: {
    async session(target, ctx) {
      const connection = await mysql.createConnection({
        host: target.host,
        port: target.port,
        user: target.mysql.user,
        password: target.mysql.password,
        database: target.mysql.database,
        ...(target.tls ? { ssl: { ca: target.ca } } : {}),
        ...(ctx.recycler ? { stream: mysqlStream(ctx.recycler) } : {}),
      })
      try {
        const [rows] = await connection.query('SELECT 1 AS one')
        if (rows[0]?.one !== 1) throw new Error(`unexpected rows ${JSON.stringify(rows)}`)
      } finally {
        // COM_QUIT, then the server closes first
        await connection.end()
      }
    },
  },
  'node:http': {
    open: (target, ctx) => (ctx.recycler ? new RecycledAgent({ recycler: ctx.recycler, keepAlive: true }) : new http.Agent({ keepAlive: true })),
    session: (target, ctx, agent) => nodeHttpGet(http, target, agent),
    close: (agent) => agent.destroy(),
  },
  'node:https': {
    open: (target, ctx) =>
      ctx.recycler ? new RecycledHttpsAgent({ recycler: ctx.recycler, keepAlive: true, ca: target.ca }) : new https.Agent({ keepAlive: true, ca: target.ca }),
    session: (target, ctx, agent) => nodeHttpGet(https, target, agent),
    close: (agent) => agent.destroy(),
  },
  undici: {
    open: (target, ctx) => {
      const tls = target.tls ? { ca: target.ca } : {}
      return new UndiciAgent({ connect: ctx.recycler ? undiciConnector(ctx.recycler, tls) : tls })
    },
    async session(target, ctx, dispatcher) {
      const { statusCode, body } = await undiciRequest(`${target.tls ? 'https' : 'http'}://${target.host}:${target.port}/hello`, { dispatcher })
      const text = await body.text()
      if (statusCode !== 200 || text.length === 0) throw new Error(`HTTP ${statusCode}, ${text.length} bytes`)
    },
    close: (dispatcher) => dispatcher.close(),
  },
}

/** Bounded poll of the recycler until nothing is active or draining (no event exists for "settled"). */
async function settle(recycler, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const stats = recycler.stats()
    if (stats.active === 0 && stats.draining === 0) return stats
    if (Date.now() > deadline) throw new Error(`recycler not settled within ${timeoutMs} ms: ${JSON.stringify(stats)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * `count` sessions of one client, `concurrency` at a time, plain (`recycled: false`) or through the
 * adapter on a fresh SocketRecycler. Errors are collected, never thrown: the test asserts on them.
 */
async function run({ client, recycled, target, count, concurrency, recyclerOptions = {} }) {
  const spec = CLIENTS[client]
  if (!spec) throw new Error(`unknown client ${client}; known: ${Object.keys(CLIENTS).join(', ')}`)
  const recycler = recycled ? new SocketRecycler({ mode: 'recycle', ...recyclerOptions }) : null
  const ctx = { recycler }
  const shared = spec.open ? spec.open(target, ctx) : null
  const errors = []
  let next = 0
  let ok = 0
  const started = Date.now()
  const worker = async () => {
    while (next < count) {
      next++
      try {
        await spec.session(target, ctx, shared)
        ok++
      } catch (err) {
        errors.push(`${err?.code ?? ''} ${err?.message ?? String(err)}`.trim())
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const ms = Date.now() - started
  if (spec.close) await spec.close(shared)
  let stats = null
  if (recycler) {
    stats = await settle(recycler, 15_000)
    await recycler.close()
  }
  return { client, recycled, tls: target.tls, count, ok, errors, ms, stats }
}

/** Whether host:port accepts a TCP connection from this namespace (for servers' readiness). */
function probe({ host, port }) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

serve({ run, probe, clients: () => Object.keys(CLIENTS) }, { pid: process.pid })
