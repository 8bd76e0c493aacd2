// The demo's "microservice": it opens a connection per request to one of many backends, uses it
// and closes it, as services that talk to shards, caches and upstreams do all day. Plain: what a
// user writes with node:net and node:http; recycled: the same through one SocketRecycler.
import { readlinkSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'

/**
 * The kernel socket behind a connected socket: `socket:[inode]` from /proc/self/fd. Every
 * socket(2) call makes a new inode, so the distinct inodes seen are the sockets a side created.
 */
export function socketInode(socket) {
  const fd = socket?._handle?.fd
  if (typeof fd !== 'number' || fd < 0) return null
  try {
    return readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return null
  }
}

/**
 * A client for one mode. `request(i, done)` runs the i-th request: even ones on a line backend
 * (request, reply, then goodbye and end() at once, as pg does), odd ones as an HTTP GET, round
 * robin over the backends (only one kind when the other has none). It records the kernel socket
 * behind each connection in `inodes`.
 * @param {'plain' | 'recycled'} mode
 * @param {{ line: { host: string, port: number }[], http: { host: string, port: number }[] }} targets
 * @param {{ recycler?: import('@fdrecycle/core').SocketRecycler, RecycledAgent?: any, inodes: Set<string> }} lib
 */
export function makeClient(mode, targets, { recycler, RecycledAgent, inodes }) {
  const connect = mode === 'recycled' ? (t) => recycler.createConnection(t) : (t) => net.connect(t)
  const agent = targets.http.length === 0
    ? null
    : mode === 'recycled' ? new RecycledAgent({ recycler, keepAlive: false }) : new http.Agent({ keepAlive: false })
  const note = (socket) => {
    const inode = socketInode(socket)
    if (inode) inodes.add(inode)
  }

  function line(target, done) {
    const socket = connect({ host: target.host, port: target.port })
    let got = ''
    let failed = null
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      note(socket)
      socket.write('GET user:42\n')
    })
    socket.on('data', (d) => {
      got += d
      if (got === '+OK GET user:42\n') socket.end('QUIT\n') // the goodbye, and our end() at once
    })
    socket.on('error', (err) => (failed = err))
    socket.on('close', () => done(failed ?? (got === '+OK GET user:42\n+BYE\n' ? null : new Error(`unexpected reply ${JSON.stringify(got)}`))))
  }

  function get(target, done) {
    const req = http.get({ host: target.host, port: target.port, path: '/', agent }, (res) => {
      note(res.socket)
      res.resume()
      res.on('end', () => done(res.statusCode === 200 ? null : new Error(`HTTP ${res.statusCode}`)))
      res.on('error', done)
    })
    req.on('error', done)
  }

  const { line: lines, http: webs } = targets
  return {
    request(i, done) {
      if (!agent) line(lines[i % lines.length], done)
      else if (lines.length === 0) get(webs[i % webs.length], done)
      else if (i % 2 === 1) get(webs[(i >> 1) % webs.length], done)
      else line(lines[(i >> 1) % lines.length], done)
    },
  }
}

/**
 * Runs `n` requests, `inFlight` at a time; `onDone(finished)` after each. A failed request is
 * counted (by error code) and the run goes on. Resolves with the seconds taken, this process's
 * CPU time (process.cpuUsage) and the failures.
 */
export function churn(client, n, inFlight, onDone = () => {}) {
  return new Promise((resolve) => {
    let started = 0
    let finished = 0
    let failed = 0
    const errors = {}
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const launch = () => {
      const i = started++
      let settled = false
      client.request(i, (err) => {
        if (settled) return
        settled = true
        if (err) {
          failed++
          const code = err.code ?? err.message.slice(0, 60)
          errors[code] = (errors[code] ?? 0) + 1
        }
        finished++
        onDone(finished)
        if (finished === n) {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9
          const cpu = process.cpuUsage(cpu0)
          resolve({ n, seconds, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, failed, errors })
        } else if (started < n) launch()
      })
    }
    for (let i = 0; i < Math.min(n, inFlight); i++) launch()
  })
}
