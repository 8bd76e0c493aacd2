// The reverse proxy itself, importable (tests, benchmarks) and used by index.mjs (the CLI).
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { SocketRecycler } from '@fdrecycle/core'
import { RecycledAgent, RecycledHttpsAgent } from '@fdrecycle/http-adapter'

export const USAGE = `usage: node examples/reverse-proxy --listen [HOST:]PORT --upstream URL [--upstream URL ...] [options]

  --listen [HOST:]PORT     where to accept clients (HOST defaults to 127.0.0.1; PORT 0 picks a free one)
  --upstream URL           an upstream server, http:// or https:// (repeat for several; round robin)
  --no-recycle             plain sockets to the upstreams (the recycler in passthrough mode), for comparison
  --no-keep-alive          no keep-alive towards the upstreams (the Agent's keepAlive: false)
  --max-sockets N          the Agent's maxSockets per upstream (default 64)
  --fin-delay-ms N         the recycler's finDelayMs (default 1000)
  --fail-timeout-ms N      skip an upstream this long after a connection error (default 1000)
  --admin-path PATH        GET PATH answers the proxy's and the recycler's stats as JSON (default /_fdrecycle/stats)
  --ca FILE                extra CA certificate (PEM) for https upstreams
  --help                   this text

SIGINT or SIGTERM prints the stats as JSON and stops the proxy.`

/** Hop-by-hop headers (RFC 9110 7.6.1): never forwarded. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect',
])

function integerOption(name, value, min) {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new Error(`--${name} expects an integer >= ${min}, got '${value}'`)
  return n
}

/** Parses the command line into a proxy config; throws an Error with a readable message. */
export function parseProxyArgs(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      'no-recycle': { type: 'boolean', default: false },
      'no-keep-alive': { type: 'boolean', default: false },
      'max-sockets': { type: 'string' },
      'fin-delay-ms': { type: 'string' },
      'fail-timeout-ms': { type: 'string' },
      'admin-path': { type: 'string' },
      ca: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return { help: true }
  if (values.listen === undefined) throw new Error('--listen is required')
  const m = /^(?:(.+):)?(\d+)$/.exec(values.listen)
  if (!m) throw new Error(`--listen expects [HOST:]PORT, got '${values.listen}'`)
  const port = integerOption('listen', m[2], 0)
  if (port > 65535) throw new Error(`--listen port must be at most 65535, got ${port}`)
  const upstreams = (values.upstream ?? []).map((u) => {
    let url
    try {
      url = new URL(u)
    } catch {
      throw new Error(`--upstream expects a URL such as http://127.0.0.1:9001, got '${u}'`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--upstream must be http:// or https://, got '${u}'`)
    if (url.pathname !== '/' || url.search) throw new Error(`--upstream takes an origin without a path, got '${u}'`)
    return url
  })
  if (upstreams.length === 0) throw new Error('at least one --upstream is required')
  const adminPath = values['admin-path'] ?? '/_fdrecycle/stats'
  if (!adminPath.startsWith('/')) throw new Error(`--admin-path must start with /, got '${adminPath}'`)
  return {
    help: false,
    host: m[1] ?? '127.0.0.1',
    port,
    upstreams,
    recycle: !values['no-recycle'],
    keepAlive: !values['no-keep-alive'],
    maxSockets: integerOption('max-sockets', values['max-sockets'], 1) ?? 64,
    finDelayMs: integerOption('fin-delay-ms', values['fin-delay-ms'], 0),
    failTimeoutMs: integerOption('fail-timeout-ms', values['fail-timeout-ms'], 0) ?? 1000,
    adminPath,
    ca: values.ca === undefined ? undefined : readFileSync(values.ca),
  }
}

function requestHeaders(req, upstream) {
  const headers = {}
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(name) || name === 'host') continue
    const value = raw[i + 1]
    headers[name] = headers[name] === undefined ? value : `${headers[name]}${name === 'cookie' ? '; ' : ', '}${value}`
  }
  for (const name of connectionTokens(req.headers.connection)) delete headers[name]
  const client = req.socket.remoteAddress ?? ''
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${client}` : client
  headers['x-forwarded-proto'] ??= 'http'
  if (req.headers.host) headers['x-forwarded-host'] ??= req.headers.host
  headers.host = upstream.host
  return headers
}

function responseHeaders(upRes) {
  const drop = new Set(connectionTokens(upRes.headers.connection))
  const out = []
  const raw = upRes.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(name) || drop.has(name)) continue
    out.push(raw[i], raw[i + 1])
  }
  return out
}

function connectionTokens(value) {
  if (!value) return []
  return String(value).split(',').map((t) => t.trim().toLowerCase()).filter((t) => t && t !== 'close' && t !== 'keep-alive')
}

function openFds() {
  try {
    return readdirSync('/proc/self/fd').length
  } catch {
    return null
  }
}

/**
 * Starts the proxy. `config` is what parseProxyArgs returns (host, port, upstreams, recycle,
 * keepAlive, maxSockets, finDelayMs, failTimeoutMs, adminPath, ca); `recycler` may be passed in.
 */
export async function startProxy(config) {
  const recycler = config.recycler ?? new SocketRecycler({
    mode: config.recycle === false ? 'passthrough' : 'auto',
    ...(config.finDelayMs === undefined ? {} : { finDelayMs: config.finDelayMs }),
  })
  const agentOptions = { recycler, keepAlive: config.keepAlive !== false, maxSockets: config.maxSockets ?? 64 }
  const httpAgent = new RecycledAgent(agentOptions)
  const httpsAgent = new RecycledHttpsAgent({ ...agentOptions, ...(config.ca ? { ca: config.ca } : {}) })
  const failTimeoutMs = config.failTimeoutMs ?? 1000
  const adminPath = config.adminPath ?? '/_fdrecycle/stats'
  const upstreams = config.upstreams.map((url) => {
    const u = new URL(url)
    return {
      url: u.origin,
      protocol: u.protocol,
      hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80),
      host: u.host,
      requests: 0,
      errors: 0,
      inFlight: 0,
      downUntil: 0,
    }
  })
  const counters = { requests: 0, inFlight: 0, responses: {}, badGateway: 0, clientAborts: 0 }
  const started = Date.now()
  let next = 0

  function pick() {
    const now = Date.now()
    for (let i = 0; i < upstreams.length; i++) {
      const u = upstreams[(next + i) % upstreams.length]
      if (u.downUntil <= now) {
        next = (next + i + 1) % upstreams.length
        return u
      }
    }
    // Every upstream failed lately: try the next one anyway rather than refuse.
    return upstreams[next++ % upstreams.length]
  }

  function stats() {
    const agentSockets = (agent) => ({
      active: Object.values(agent.sockets).reduce((n, l) => n + l.length, 0),
      free: Object.values(agent.freeSockets).reduce((n, l) => n + l.length, 0),
    })
    return {
      uptimeMs: Date.now() - started,
      requests: counters.requests,
      inFlight: counters.inFlight,
      responses: { ...counters.responses },
      badGateway: counters.badGateway,
      clientAborts: counters.clientAborts,
      upstreams: upstreams.map(({ url, requests, errors, inFlight, downUntil }) => ({ url, requests, errors, inFlight, down: downUntil > Date.now() })),
      agent: { http: agentSockets(httpAgent), https: agentSockets(httpsAgent) },
      openFds: openFds(),
      recycler: recycler.stats(),
    }
  }

  function count(status) {
    const key = `${Math.floor(status / 100)}xx`
    counters.responses[key] = (counters.responses[key] ?? 0) + 1
  }

  function badGateway(res, upstream, err) {
    counters.badGateway++
    count(502)
    const body = `502 Bad Gateway: ${upstream.url}: ${err.code ?? err.message}\n`
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }

  const server = http.createServer((req, res) => {
    if (req.url === adminPath && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = `${JSON.stringify(stats(), null, 2)}\n`
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    counters.requests++
    counters.inFlight++
    const upstream = pick()
    upstream.requests++
    upstream.inFlight++
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      counters.inFlight--
      upstream.inFlight--
    }
    const client = upstream.protocol === 'https:' ? https : http
    const upReq = client.request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: requestHeaders(req, upstream),
      agent: upstream.protocol === 'https:' ? httpsAgent : httpAgent,
    })
    let clientGone = false
    let upstreamFailed = false
    const failMidBody = () => {
      // The upstream broke off mid-body: the client must not take a truncated body for a whole one.
      if (upstreamFailed) return
      upstreamFailed = true
      upstream.errors++
      res.destroy()
    }
    upReq.on('response', (upRes) => {
      count(upRes.statusCode)
      res.writeHead(upRes.statusCode, upRes.statusMessage, responseHeaders(upRes))
      upRes.pipe(res)
      upRes.on('aborted', failMidBody)
      upRes.on('error', failMidBody)
    })
    upReq.on('error', (err) => {
      if (clientGone) return settle() // our own destroy() below, not the upstream's fault
      if (res.headersSent || res.destroyed) {
        failMidBody()
      } else {
        upstream.errors++
        upstream.downUntil = Date.now() + failTimeoutMs
        badGateway(res, upstream, err)
      }
      req.resume() // discard what is left of the client's body
      settle()
    })
    // Request bodies stream to the upstream as they arrive.
    req.pipe(upReq)
    req.on('error', () => upReq.destroy())
    res.on('close', () => {
      if (!res.writableFinished && !upstreamFailed) {
        // The client left before its response was complete: abandon the upstream response. The
        // recycler drains what the upstream still sends; the fd serves no one until its EOF.
        counters.clientAborts++
        clientGone = true
        upReq.destroy()
      }
      settle()
    })
  })
  server.listen(config.port ?? 0, config.host ?? '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing
  return {
    server,
    recycler,
    port: address.port,
    url: `http://${host}:${address.port}`,
    stats,
    close() {
      closing ??= (async () => {
        server.close()
        server.closeAllConnections()
        httpAgent.destroy()
        httpsAgent.destroy()
        await recycler.close()
      })()
      return closing
    },
  }
}
