// The demo's "microservice": it opens a connection per request to one of many backends, uses it
// and closes it, as services that talk to shards, caches and upstreams do all day. Plain: what a
// user writes with node:net and node:http; recycled: the same through one SocketRecycler.
import http from 'node:http'
import net from 'node:net'

const HOST = '127.0.0.1'

/**
 * A client for one mode. `request(i, done)` runs the i-th request: even ones on a line backend
 * (request, reply, goodbye + end at once, as pg does), odd ones as an HTTP GET, round robin over
 * the ports (only one kind when the other has no ports). Records each connection's local port (to tell whose TIME_WAIT is whose).
 * @param {'plain' | 'recycled'} mode
 * @param {{ line: number[], http: number[] }} ports
 * @param {{ recycler?: import('@fdrecycle/core').SocketRecycler, RecycledAgent?: any }} lib
 */
export function makeClient(mode, ports, { recycler, RecycledAgent } = {}) {
  const connect = mode === 'recycled' ? (port) => recycler.createConnection({ host: HOST, port }) : (port) => net.connect({ host: HOST, port })
  const agent = ports.http.length === 0
    ? null
    : mode === 'recycled' ? new RecycledAgent({ recycler, keepAlive: false }) : new http.Agent({ keepAlive: false })
  const localPorts = new Set()

  function line(port, done) {
    const socket = connect(port)
    let got = ''
    let failed = null
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      localPorts.add(socket.localPort)
      socket.write('GET user:42\n')
    })
    socket.on('data', (d) => {
      got += d
      if (got === '+OK GET user:42\n') socket.end('QUIT\n') // the goodbye, and our end() at once
    })
    socket.on('error', (err) => (failed = err))
    socket.on('close', () => done(failed ?? (got === '+OK GET user:42\n+BYE\n' ? null : new Error(`unexpected reply ${JSON.stringify(got)}`))))
  }

  function get(port, done) {
    const req = http.get({ host: HOST, port, path: '/', agent }, (res) => {
      localPorts.add(res.socket.localPort)
      res.resume()
      res.on('end', () => done(res.statusCode === 200 ? null : new Error(`HTTP ${res.statusCode}`)))
    })
    req.on('error', done)
  }

  return {
    localPorts,
    request(i, done) {
      if (!agent || ports.line.length === 0) {
        if (agent) get(ports.http[i % ports.http.length], done)
        else line(ports.line[i % ports.line.length], done)
      } else if (i % 2 === 1) get(ports.http[(i >> 1) % ports.http.length], done)
      else line(ports.line[(i >> 1) % ports.line.length], done)
    },
  }
}

/**
 * Runs `n` requests, `inFlight` at a time; `onDone(count)` after each. Resolves with seconds taken;
 * rejects on the first error.
 */
export function churn(client, n, inFlight, onDone = () => {}) {
  return new Promise((resolve, reject) => {
    let started = 0
    let finished = 0
    let failed = false
    const t0 = process.hrtime.bigint()
    const launch = () => {
      const i = started++
      client.request(i, (err) => {
        if (failed) return
        if (err) {
          failed = true
          reject(err)
          return
        }
        finished++
        onDone(finished)
        if (finished === n) resolve(Number(process.hrtime.bigint() - t0) / 1e9)
        else if (started < n) launch()
      })
    }
    for (let i = 0; i < Math.min(n, inFlight); i++) launch()
  })
}
