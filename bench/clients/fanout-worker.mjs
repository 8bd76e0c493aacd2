#!/usr/bin/env node
// The client of the fanout scenario: a service that talks to many backends, each request a new
// connection, `inFlight` at a time for `durationMs`, destinations taken in turn. Goodbye backends
// get the goodbye pattern (request, reply, goodbye line and end() at once: pg, Redis, SMTP);
// HTTP backends a GET through node:http without keep-alive (the server answers
// `Connection: close`). Plain and recycled differ only where a user's code would.
//   node fanout-worker.mjs '{"mode":"recycled","destinations":[{"host":"127.0.10.1","port":5000,"kind":"goodbye"}],"inFlight":32,"durationMs":60000}'
// Prints one JSON line at the end: connections, failures by code, CPU, and per-second progress.
import { readdirSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { SocketRecycler } from '@fdrecycle/core'

const { mode, destinations, inFlight, durationMs } = JSON.parse(process.argv[2])
const recycler = mode === 'recycled' ? new SocketRecycler() : null
let agent
if (recycler) {
  const { RecycledAgent } = await import('@fdrecycle/http-adapter')
  agent = new RecycledAgent({ recycler, keepAlive: false })
} else {
  agent = new http.Agent({ keepAlive: false })
}
const connect = recycler ? (o) => recycler.createConnection(o) : (o) => net.connect(o)

function goodbye({ host, port }, done) {
  const socket = connect({ host, port })
  socket.setNoDelay(true)
  let got = ''
  let failed = null
  socket.setEncoding('utf8')
  socket.on('connect', () => socket.write('GET key\n'))
  socket.on('data', (d) => {
    got += d
    if (got === '+OK GET key\n') socket.end('QUIT\n')
  })
  socket.on('error', (err) => (failed = err))
  socket.on('close', () => done(failed ?? (got.startsWith('+OK GET key\n') ? null : new Error('unexpected reply'))))
}

function get({ host, port }, done) {
  const req = http.get({ host, port, path: '/', agent }, (res) => {
    res.resume()
    res.on('end', () => done(res.statusCode === 200 ? null : new Error(`HTTP ${res.statusCode}`)))
    res.on('error', done)
  })
  req.on('error', done)
}

let next = 0
let completed = 0
let failed = 0
const errors = {}
const progress = []
const t0 = performance.now()
const cpu0 = process.cpuUsage()
let stopping = false

const sampler = setInterval(() => {
  progress.push({ t: Math.round(performance.now() - t0), completed, failed, fds: readdirSync('/proc/self/fd').length - 1 })
}, 1000)

await new Promise((resolve) => {
  let running = 0
  const launch = () => {
    const d = destinations[next++ % destinations.length]
    running++
    let settled = false
    const done = (err) => {
      if (settled) return
      settled = true
      running--
      if (err) {
        failed++
        const code = err.code ?? err.message.slice(0, 60)
        errors[code] = (errors[code] ?? 0) + 1
      } else {
        completed++
      }
      if (!stopping && performance.now() - t0 >= durationMs) stopping = true
      if (!stopping) launch()
      else if (running === 0) resolve()
    }
    if (d.kind === 'goodbye') goodbye(d, done)
    else get(d, done)
  }
  for (let i = 0; i < inFlight; i++) launch()
})
clearInterval(sampler)
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const stats = recycler ? recycler.stats() : null
const result = {
  mode, completed, failed, errors, seconds, perSecond: completed / seconds,
  cpuPerConnUs: (cpu.user + cpu.system) / Math.max(1, completed + failed),
  progress, recycler: stats, fdsAtEnd: readdirSync('/proc/self/fd').length - 1,
}
if (recycler) await recycler.close()
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
