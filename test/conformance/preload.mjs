// Loaded with `node --import` into one Node test process by the conformance runner (run.mjs):
// routes `net.connect`, `net.createConnection` and `new net.Socket()` through one
// SocketRecycler, so that Node's own net tests exercise recycled sockets. Nothing else in the
// process changes: server-side sockets, TLS wrapping and Node's internals keep their own
// references to net.Socket.
//
// FDRECYCLE_CONFORMANCE_POOL=warm first makes and releases connections on loopback, so that the
// test's sockets get fds that have served a connection before (the pool holds used fds).
// FDRECYCLE_CONFORMANCE_STATS=<file> receives the recycler's stats() as JSON at exit, so the
// runner can show that the test's sockets went through the recycler.
import diagnosticsChannel from 'node:diagnostics_channel'
import { writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'
import { SocketRecycler } from '@fdrecycle/core'

// 'recycle' rather than 'auto': a machine that cannot recycle fails here, loudly, instead of
// comparing plain sockets with plain sockets.
const recycler = new SocketRecycler({ mode: 'recycle' })

// This process only: children forked with the default execArgv (cluster workers, fork()) run
// plain. A cluster worker started with an ESM `--import` misses the server handle its primary
// sends right after 'online' (test-net-listen-handle-in-cluster-1 hangs with an empty preload).
const self = import.meta.url
for (let i = process.execArgv.length - 1; i >= 0; i--) {
  if (process.execArgv[i] === `--import=${self}`) process.execArgv.splice(i, 1)
  else if (process.execArgv[i] === '--import' && process.execArgv[i + 1] === self) process.execArgv.splice(i, 2)
}

const WARM_PER_FAMILY = 4
const WARM_TIMEOUT_MS = 10_000

async function warmFamily(host) {
  const server = net.createServer((conn) => {
    // The server answers and closes first, as pg, Redis and HTTP servers do: the recycler
    // releases the fd without waiting out finDelayMs.
    conn.once('data', () => conn.end('bye'))
  })
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host, resolve)
    })
  } catch (error) {
    if (host === '::1' && (error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT')) return 0
    throw error
  }
  const { port } = server.address()
  const clients = []
  for (let i = 0; i < WARM_PER_FAMILY; i++) {
    clients.push(
      new Promise((resolve, reject) => {
        const socket = recycler.createConnection({ host, port, autoSelectFamily: false })
        socket.on('error', reject)
        socket.on('close', resolve)
        socket.on('connect', () => socket.write('hello'))
        socket.resume()
      }),
    )
  }
  await Promise.all(clients)
  await new Promise((resolve) => server.close(resolve))
  return WARM_PER_FAMILY
}

async function warm() {
  const transition = diagnosticsChannel.channel('fdrecycle:fd:transition')
  let wanted = 0
  let onChange = () => {}
  const listener = () => onChange()
  transition.subscribe(listener)
  try {
    wanted += await warmFamily('127.0.0.1')
    wanted += await warmFamily('::1')
    // Released fds come back to the pool through the release protocol, after 'close': wait for
    // the pool to hold all of them, each move announced on the transition channel.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`conformance warm-up: ${recycler.stats().idle} of ${wanted} fds back in the pool after ${WARM_TIMEOUT_MS} ms: ${JSON.stringify(recycler.stats())}`))
      }, WARM_TIMEOUT_MS)
      onChange = () => {
        if (recycler.stats().idle >= wanted && recycler.stats().draining === 0) {
          clearTimeout(timer)
          resolve()
        }
      }
      onChange()
    })
  } finally {
    transition.unsubscribe(listener)
  }
  const stats = recycler.stats()
  if (stats.recycled < wanted) throw new Error(`conformance warm-up: only ${stats.recycled} of ${wanted} fds recycled: ${JSON.stringify(stats)}`)
}

if (process.env.FDRECYCLE_CONFORMANCE_POOL === 'warm') await warm()
const warmStats = recycler.stats()

const OriginalSocket = net.Socket

/**
 * Stands in for net.Socket. `new net.Socket()` gets a recycled socket; a subclass
 * (`class X extends net.Socket`) and Node's own `ReflectApply(net.Socket, this, ...)` from
 * TLSSocket's constructor get the original constructor, as they would without this preload.
 */
function Socket(options) {
  if (new.target === undefined) {
    if (this instanceof OriginalSocket) return Reflect.apply(OriginalSocket, this, arguments)
    return new Socket(options)
  }
  if (new.target !== Socket) return Reflect.construct(OriginalSocket, arguments, new.target)
  return recycler.createSocket(options)
}
Socket.prototype = OriginalSocket.prototype
Object.setPrototypeOf(Socket, OriginalSocket)
Object.defineProperty(Socket, 'name', { value: 'Socket' })

function connect(...args) {
  return recycler.createConnection(...args)
}
Object.defineProperty(connect, 'name', { value: 'connect' })

net.Socket = Socket
net.Stream = Socket
net.connect = connect
net.createConnection = connect
syncBuiltinESMExports()

const statsFile = process.env.FDRECYCLE_CONFORMANCE_STATS
if (statsFile) {
  process.on('exit', () => {
    const now = recycler.stats()
    // What the test itself did, without the warm-up's connections.
    const test = { connections: now.connections - warmStats.connections, reusedConnections: now.reusedConnections - warmStats.reusedConnections }
    try {
      writeFileSync(statsFile, JSON.stringify({ pid: process.pid, warm: warmStats, test, final: now }) + '\n', { flag: 'a' })
    } catch {
      // the runner reports a missing stats file; the test's own outcome stands
    }
  })
}
