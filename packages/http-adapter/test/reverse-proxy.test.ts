// examples/reverse-proxy in-process (its module imports the adapter's sources here): balancing,
// streaming, 502s, stats, and what recycling does to its upstream connections.
import http from 'node:http'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { parseProxyArgs, startProxy } from '../../../examples/reverse-proxy/proxy.mjs'
import { closedPort } from '../../../test/helpers/servers.js'
import { isLinux } from '../../../test/helpers/system.js'
import { servedFiles, sha256 } from './fixtures.js'
import {
  expectRecycled, fetch, openSockets, passthroughStats, recyclingSupported, runConcurrently, settled, socketsSince,
  timeWaitCount, timeWaitSnapshot, trackConnections, until, upstream, type Upstream,
} from './helpers.js'

const nginx = inject('nginx')
// The balancing churn: 500 requests in npm test, 2,000 under `npm run soak` (FDRECYCLE_SOAK=1); the
// timeout is more than twice the time measured on a loaded 2-core machine.
const REQUESTS = process.env.FDRECYCLE_SOAK ? 2000 : 500
const CHURN_TIMEOUT = process.env.FDRECYCLE_SOAK ? 600_000 : 120_000

interface Proxy {
  url: string
  recycler: SocketRecycler
  stats(): {
    requests: number
    badGateway: number
    clientAborts: number
    responses: Record<string, number>
    upstreams: { url: string; requests: number; errors: number; down: boolean }[]
    recycler: ReturnType<SocketRecycler['stats']>
  }
  close(): Promise<void>
}

/** A Node upstream serving what nginx serves, closing every connection as nginx does here. */
function sameFilesAsNginx(): Promise<Upstream> {
  const files = servedFiles()
  return upstream((req, res) => {
    res.setHeader('connection', 'close')
    switch (req.url) {
      case '/hello':
        return void res.end(files.hello)
      case '/small.txt':
        return void res.end(files.small)
      case '/large.bin':
        return void res.end(files.large)
      case '/chunked/text.txt': {
        // no Content-Length: chunked, in pieces
        const body = Buffer.from(files.chunked)
        for (let i = 0; i < body.length; i += 10_000) res.write(body.subarray(i, i + 10_000))
        return void res.end()
      }
      default:
        res.statusCode = 404
        res.end()
    }
  })
}

describe('reverse proxy command line', () => {
  it('parses the documented options', () => {
    const c = parseProxyArgs(['--listen', '8080', '--upstream', 'http://127.0.0.1:9001', '--upstream', 'https://[::1]:9443', '--max-sockets', '8', '--no-recycle'])
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, recycle: false, keepAlive: true, maxSockets: 8, adminPath: '/_fdrecycle/stats' })
    expect(c.upstreams!.map((u: URL) => u.origin)).toEqual(['http://127.0.0.1:9001', 'https://[::1]:9443'])
    expect(parseProxyArgs(['--listen', '0.0.0.0:0', '--upstream', 'http://a:1'])).toMatchObject({ host: '0.0.0.0', port: 0, recycle: true })
    expect(parseProxyArgs(['--help'])).toEqual({ help: true })
  })

  it.each([
    [[], /--listen is required/],
    [['--listen', '8080'], /at least one --upstream/],
    [['--listen', 'x', '--upstream', 'http://a:1'], /--listen expects/],
    [['--listen', '70000', '--upstream', 'http://a:1'], /at most 65535/],
    [['--listen', '1', '--upstream', 'ftp://a:1'], /http:\/\/ or https:\/\//],
    [['--listen', '1', '--upstream', 'http://a:1/path'], /without a path/],
    [['--listen', '1', '--upstream', 'nope'], /expects a URL/],
    [['--listen', '1', '--upstream', 'http://a:1', '--max-sockets', '0'], /--max-sockets expects an integer >= 1/],
    [['--listen', '1', '--upstream', 'http://a:1', '--bogus'], /Unknown option/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseProxyArgs(argv)).toThrow(message)
  })
})

describe.runIf(isLinux)('reverse proxy', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })
  async function proxy(config: Record<string, unknown>): Promise<Proxy> {
    const p = (await startProxy({ host: '127.0.0.1', port: 0, ...config })) as Proxy
    cleanup.push(async () => {
      await p.close()
      // close() waits for the recycled sockets in use; plain ones (with recycling off) close on their own.
      await until(() => p.recycler.stats().active === 0, "the proxy's upstream sockets to close")
    })
    return p
  }
  function clientAgent(maxSockets = 16): http.Agent {
    const agent = new http.Agent({ keepAlive: true, maxSockets })
    cleanup.push(async () => agent.destroy())
    return agent
  }

  it(`balances ${REQUESTS} requests over nginx and a Node upstream that close every connection: a handful of fds, no client TIME_WAIT, bodies intact`, async () => {
    await using node = await sameFilesAsNginx()
    const nginxUrl = `http://${nginx.host}:${nginx.ports.proxy}`
    const p = await proxy({ upstreams: [new URL(nginxUrl), new URL(node.url)] })
    const agent = clientAgent()
    const nginxTimeWait = timeWaitSnapshot(nginx.ports.proxy, 'client')
    const files = [nginx.hello, nginx.small, nginx.chunked, nginx.large]
    await runConcurrently(REQUESTS, 16, async (n) => {
      const file = n % 100 === 0 ? nginx.large : files[n % 3]!
      const r = await fetch(`${p.url}${file.path}`, agent)
      expect(r.status).toBe(200)
      expect(r.body.length).toBe(file.size)
      expect(sha256(r.body)).toBe(file.sha256)
      if (file === nginx.chunked) expect(r.headers['transfer-encoding']).toBe('chunked')
    })
    await settled(p.recycler)
    const stats = p.stats()
    expect(stats.requests).toBe(REQUESTS)
    expect(stats.responses).toEqual({ '2xx': REQUESTS })
    expect(stats.upstreams.map((u) => u.requests)).toEqual([REQUESTS / 2, REQUESTS / 2])
    expect(stats.recycler.connections).toBe(REQUESTS)
    if (recyclingSupported) {
      expect(stats.recycler.fdsCreated).toBeLessThanOrEqual(64)
      expect(stats.recycler).toMatchObject({ finSentFirst: 0, resetsSent: 0, fdsClosed: 0, peerClosedFirst: REQUESTS })
      expect(timeWaitCount(nginx.ports.proxy, 'client', null, nginxTimeWait)).toBe(0)
      expect(timeWaitCount(node.port, 'client', node.clientPorts)).toBe(0)
    } else {
      expect(stats.recycler).toMatchObject(passthroughStats(REQUESTS))
    }
  }, CHURN_TIMEOUT)

  it('without recycling (--no-recycle) the same proxy opens one socket per upstream request', async () => {
    const p = await proxy({ upstreams: [new URL(`http://${nginx.host}:${nginx.ports.plain}`)], recycle: false })
    const agent = clientAgent()
    await runConcurrently(300, 16, async () => {
      expect((await fetch(`${p.url}${nginx.small.path}`, agent)).body.length).toBe(nginx.small.size)
    })
    const stats = p.stats()
    expect(stats.recycler).toMatchObject({ mode: 'passthrough', connections: 300, fdsCreated: 300 })
  })

  it('streams bodies both ways: each request chunk comes back through the proxy before the next is sent', async () => {
    const echo = (): Promise<Upstream> => upstream((req, res) => {
      res.setHeader('connection', 'close')
      res.setHeader('x-request-transfer-encoding', String(req.headers['transfer-encoding']))
      req.pipe(res)
    })
    await using a = await echo()
    await using b = await echo()
    const p = await proxy({ upstreams: [new URL(a.url), new URL(b.url)] })
    for (let round = 0; round < 4; round++) {
      const { echoed, te } = await new Promise<{ echoed: Buffer; te: string | undefined }>((resolve, reject) => {
        const req = http.request(`${p.url}/echo`, { method: 'POST', agent: false })
        const received: Buffer[] = []
        let sent = 0
        const sendNext = () => {
          if (sent === 32) return void req.end()
          req.write(Buffer.alloc(64 * 1024, sent++ % 251))
        }
        req.on('response', (res) => {
          let pending = 0
          res.on('data', (chunk: Buffer) => {
            received.push(chunk)
            pending += chunk.length
            // a chunk's echo is complete: only now send the next one (a buffering proxy would stall here)
            while (pending >= 64 * 1024) {
              pending -= 64 * 1024
              sendNext()
            }
          })
          const done = () => resolve({ echoed: Buffer.concat(received), te: res.headers['x-request-transfer-encoding'] as string | undefined })
          // agent: false closes the connection after the response: wait for it, so that no socket of
          // this test is still closing when the next one counts its fds
          res.on('end', () => (res.socket && !res.socket.destroyed ? res.socket.once('close', done) : done()))
        })
        req.on('error', reject)
        req.flushHeaders()
        sendNext()
      })
      expect(te).toBe('chunked')
      expect(echoed.length).toBe(32 * 64 * 1024)
      for (let i = 0; i < 32; i++) expect(echoed[i * 64 * 1024]).toBe(i % 251)
    }
    expect(p.stats().upstreams.map((u) => u.requests)).toEqual([2, 2])
  })

  it('answers 502 for an upstream that refuses, skips it for a while, and never hands a truncated body as whole', async () => {
    const before = openSockets()
    const dead = await closedPort()
    await using breaker = await upstream((req, res) => {
      if (req.url === '/break') {
        res.writeHead(200, { 'content-length': 1_000_000 })
        res.write(Buffer.alloc(1000, 'x'), () => res.destroy())
      } else {
        res.end('alive')
      }
    })
    const p = await proxy({ upstreams: [new URL(`http://127.0.0.1:${dead}`), new URL(breaker.url)], failTimeoutMs: 60_000 })
    const agent = clientAgent()
    const first = await fetch(`${p.url}/x`, agent)
    expect(first.status).toBe(502)
    expect(first.body.toString()).toMatch(/ECONNREFUSED/)
    for (let i = 0; i < 5; i++) expect((await fetch(`${p.url}/x`, agent)).body.toString()).toBe('alive')
    await expect(fetch(`${p.url}/break`, agent)).rejects.toThrow()
    const stats = p.stats()
    expect(stats.badGateway).toBe(1)
    expect(stats.upstreams).toMatchObject([{ errors: 1, down: true, requests: 1 }, { errors: 1, requests: 6 }])
    agent.destroy()
    for (const fn of cleanup.splice(0).reverse()) await fn()
    await breaker.close()
    expect(socketsSince(before)).toBe(0)
  })

  it('serves its stats as JSON at the admin path', async () => {
    const p = await proxy({ upstreams: [new URL(`http://${nginx.host}:${nginx.ports.proxy}`)], adminPath: '/admin/stats' })
    const agent = clientAgent()
    await fetch(`${p.url}/hello`, agent)
    const r = await fetch(`${p.url}/admin/stats`, agent)
    expect(r.headers['content-type']).toBe('application/json')
    const stats = JSON.parse(r.body.toString())
    expect(stats).toMatchObject({ requests: 1, responses: { '2xx': 1 }, recycler: { mode: recyclingSupported ? 'recycling' : 'passthrough', connections: 1 } })
    expect(stats.openFds).toBeGreaterThan(0)
  })

  it('a client that leaves mid-body: the upstream response is drained off the fd, the next request gets its own', async () => {
    const recycler = new SocketRecycler({ maxSockets: 1 })
    const p = await proxy({ upstreams: [new URL(`http://${nginx.host}:${nginx.ports.abort}`)], recycler })
    const track = trackConnections()
    cleanup.push(async () => track.stop())
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${p.url}${nginx.large.path}`, { agent: false }, (res) => {
        let n = 0
        res.on('data', (chunk: Buffer) => {
          n += chunk.length
          if (n >= 1 << 20) {
            req.destroy()
            resolve()
          }
        })
      })
      req.on('error', (err) => {
        if (!req.destroyed) reject(err)
      })
    })
    const r = await fetch(`${p.url}${nginx.small.path}`, clientAgent())
    expect(sha256(r.body)).toBe(nginx.small.sha256)
    await settled(recycler)
    expect(p.stats().clientAborts).toBe(1)
    if (recyclingSupported) expect(new Set(track.connections.map((c) => c.inode)).size).toBe(1)
    expectRecycled(recycler.stats(), { fdsCreated: 1, connections: 2 })
  })
})
