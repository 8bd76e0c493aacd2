#!/usr/bin/env node
// npm run demo: several embedded loopback backends speaking a goodbye-then-close line protocol;
// a "microservice" opens, uses and closes connections to them, through plain sockets and through
// fdrecycle, and reports what each left behind.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { SocketRecycler, isRecyclingSupported } from '@fdrecycle/core'

const CONNECTIONS = Number(process.env.DEMO_CONNECTIONS ?? 3000)
const IN_FLIGHT = 16
const BACKENDS = 4

async function backend() {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.setEncoding('utf8')
    let buf = ''
    socket.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line === 'QUIT') return void socket.end('+BYE\n') // the server closes after the goodbye
        socket.write(`+OK ${line}\n`)
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** Client-side TIME_WAIT towards the given server ports (`ss`, filtered on the destination port). */
function timeWait(ports) {
  try {
    const filter = ports.map((p) => `dport = :${p}`).join(' or ')
    const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( ${filter} )`], { encoding: 'utf8' })
    return out.split('\n').filter((l) => l.trim() !== '').length
  } catch {
    return 'n/a (no ss)'
  }
}

async function churn(label, connect, ports) {
  let done = 0
  let started = 0
  const t0 = process.hrtime.bigint()
  await new Promise((resolve, reject) => {
    const one = () => {
      if (started >= CONNECTIONS) return
      const port = ports[started++ % ports.length]
      const socket = connect(port)
      socket.setEncoding('utf8')
      let got = ''
      // Like pg (Terminate, then end()) and many clients: the goodbye and our FIN leave together.
      socket.on('connect', () => socket.write('GET key\n'))
      socket.on('data', (d) => {
        got += d
        if (got === '+OK GET key\n') socket.end('QUIT\n')
      })
      socket.on('error', reject)
      socket.on('close', () => {
        if (got !== '+OK GET key\n+BYE\n') return reject(new Error(`unexpected reply ${JSON.stringify(got)}`))
        done++
        if (done % 100 === 0 || done === CONNECTIONS) {
          const width = 30
          const filled = Math.round((done / CONNECTIONS) * width)
          if (process.stdout.isTTY || done === CONNECTIONS) {
            process.stdout.write(`\r  ${label.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${CONNECTIONS}`)
          }
        }
        if (done === CONNECTIONS) resolve()
        else one()
      })
    }
    for (let i = 0; i < IN_FLIGHT; i++) one()
  })
  process.stdout.write('\n')
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { perSecond: CONNECTIONS / seconds, timeWait: timeWait(ports) }
}

const servers = await Promise.all(Array.from({ length: BACKENDS * 2 }, backend))
const ports = servers.map((s) => s.address().port)
const plainPorts = ports.slice(0, BACKENDS)
const recycledPorts = ports.slice(BACKENDS)

console.log(`fdrecycle demo: ${CONNECTIONS} connections, ${IN_FLIGHT} in flight, to ${BACKENDS} backends (loopback)`)
console.log(`recycling supported here: ${isRecyclingSupported()}\n`)
const recycler = new SocketRecycler()
const plain = await churn('plain', (port) => net.connect({ port, host: '127.0.0.1' }), plainPorts)
const recycled = await churn('recycled', (port) => recycler.createConnection({ port, host: '127.0.0.1' }), recycledPorts)
const stats = recycler.stats()
await recycler.close()
for (const s of servers) s.close()

const row = (k, a, b) => console.log(`  ${k.padEnd(34)} ${String(a).padStart(10)} ${String(b).padStart(10)}`)
console.log('')
row('', 'plain', 'recycled')
row('connections made', CONNECTIONS, stats.connections)
row('fds created', CONNECTIONS, stats.fdsCreated)
row('connections on a reused fd', 0, stats.reusedConnections)
row('client TIME_WAIT left behind', plain.timeWait, recycled.timeWait)
row('connections per second', plain.perSecond.toFixed(0), recycled.perSecond.toFixed(0))
console.log(`\n  throughput ratio recycled/plain: ${(recycled.perSecond / plain.perSecond).toFixed(2)}x (one run; npm run bench has the interleaved A/B)`)
