// The client side of the fault tests, run inside namespace A: `ip netns exec A node client-agent.mjs`.
// It drives the *built* @fdrecycle/core (packages/core/dist, resolved through the workspace link),
// as an application would, and answers the test's questions (stats, fds, TCP states, counters).
import diagnosticsChannel from 'node:diagnostics_channel'
import { readdirSync, readlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isRecyclingSupported, recyclingSupport, SocketRecycler } from '@fdrecycle/core'
import { pattern, serve, tcpCounters, tcpSockets } from './agent-protocol.mjs'

const require = createRequire(import.meta.url)
const support = recyclingSupport()
isRecyclingSupported()
// Measured after the core has loaded koffi and probed AF_UNSPEC: what close() must come back to.
const baselineFds = fdCount()

let recycler = null
const acquired = new WeakMap() // socket -> { id, reused }
const transitions = new Map() // pooled fd id -> [{ from, to, reason, t }]
const connections = new Map() // local port -> { localPort, pooledId, startedAt, closedAt } (the last 5000)
/** Wall-clock ms with µs precision, comparable with the relay's log. */
const wallMs = () => performance.timeOrigin + performance.now()

diagnosticsChannel.subscribe('fdrecycle:socket:acquired', ({ socket, fd, reused }) => {
  acquired.set(socket, { id: fd.id, reused })
})
diagnosticsChannel.subscribe('fdrecycle:fd:transition', ({ fd, from, to, reason }) => {
  let list = transitions.get(fd.id)
  if (!list) transitions.set(fd.id, (list = []))
  list.push({ from, to, reason, t: wallMs() })
})

function fdCount() {
  return readdirSync('/proc/self/fd').length
}

let libc = null
/** tcpi_state of an fd (getsockopt TCP_INFO, first byte): 7 CLOSE, 9 LAST_ACK, ... */
function tcpState(fd) {
  if (!libc) {
    const koffi = require('koffi')
    const lib = koffi.load('libc.so.6')
    libc = { koffi, getsockopt: lib.func('int getsockopt(int, int, int, void *, void *)') }
  }
  const value = Buffer.alloc(1)
  const len = Buffer.alloc(4)
  len.writeUInt32LE(1, 0)
  if (libc.getsockopt(fd, 6, 11, value, len) !== 0) throw new Error(`getsockopt(${fd}, TCP_INFO) failed: errno ${libc.koffi.errno()}`)
  return value[0]
}

function inodeOf(fd) {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return null
  }
}

/**
 * One connection: send `<behaviour> <size> <seed>`, read `size` bytes, then leave as `end` says:
 *   'after-eof' wait for the peer's FIN, then end()   'end' end() at once (our FIN withheld)
 *   'destroy'   destroy() before the peer's EOF       'reset' resetAndDestroy()
 * `endDelayMs` with 'after-eof': an application that ends some time after the EOF (allowHalfOpen),
 * so that the kernel's delayed ACK of the peer's FIN goes out before our FIN.
 * Resolves after 'close' and the release that follows it.
 */
function cycle({ host, port, behaviour, size, seed, end, endDelayMs = 0, timeoutMs = 20_000 }) {
  return new Promise((resolve) => {
    const expected = pattern(seed, size)
    const chunks = []
    let received = 0
    let fd = -1
    let inode = null
    let localPort = null
    let error = null
    let sawEof = false
    let left = false
    const started = Date.now()
    const startedAt = wallMs()
    const socket = recycler.createConnection(endDelayMs > 0 ? { host, port, allowHalfOpen: true } : { host, port })
    const timer = setTimeout(() => {
      error = error ?? `timeout after ${timeoutMs} ms (received ${received}/${size}, eof ${sawEof})`
      socket.destroy()
    }, timeoutMs)
    const leave = () => {
      if (left) return
      left = true
      if (end === 'end') socket.end()
      else if (end === 'destroy') socket.destroy()
      else if (end === 'reset') socket.resetAndDestroy()
    }
    socket.on('connect', () => {
      fd = socket._handle.fd
      inode = inodeOf(fd)
      localPort = socket.localPort
      socket.write(`${behaviour} ${size} ${seed}\n`)
    })
    socket.on('data', (chunk) => {
      chunks.push(chunk)
      received += chunk.length
      if (received >= size) leave()
    })
    socket.on('end', () => {
      sawEof = true
      if (end === 'after-eof') {
        if (endDelayMs > 0) setTimeout(() => socket.end(), endDelayMs)
        else socket.end()
      }
    })
    socket.on('error', (err) => {
      error = err.code ?? err.message
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const info = acquired.get(socket) ?? { id: null, reused: null }
      if (localPort !== null) {
        connections.set(localPort, { localPort, pooledId: info.id, startedAt, closedAt: wallMs(), error })
        if (connections.size > 5000) connections.delete(connections.keys().next().value)
      }
      // The release runs on the next tick after 'close'; the quarantine takes two more turns.
      setImmediate(() =>
        setImmediate(() =>
          resolve({
            ok: error === null && Buffer.concat(chunks).equals(expected),
            error,
            received,
            sawEof,
            fd,
            inode,
            localPort,
            pooledId: info.id,
            reused: info.reused,
            ms: Date.now() - started,
          }),
        ),
      )
    })
  })
}

/** A seeded xorshift32 for the load mix (the seed is printed by the test). */
function rng(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x100000000
  }
}

/** `cycles` connections, `concurrency` at a time, sizes and endings drawn from `seed`. */
async function load({ host, port, cycles, concurrency, maxSize, seed, cycleTimeoutMs = 20_000 }) {
  const random = rng(seed)
  const plan = Array.from({ length: cycles }, (_, i) => {
    const r = random()
    // Mostly the documented happy path (the peer closes first), some early leavers and FIN-first.
    const [behaviour, end] = r < 0.6 ? ['close', 'end'] : r < 0.8 ? ['close', 'after-eof'] : r < 0.9 ? ['close', 'destroy'] : ['wait', 'end']
    return { i, behaviour, end, size: 1 + Math.floor(random() * maxSize), seed: 1 + Math.floor(random() * 0xfffffff) }
  })
  const failures = []
  let next = 0
  let reused = 0
  let maxMs = 0
  const started = Date.now()
  const worker = async () => {
    while (next < plan.length) {
      const step = plan[next++]
      const r = await cycle({ host, port, behaviour: step.behaviour, size: step.size, seed: step.seed, end: step.end, timeoutMs: cycleTimeoutMs })
      if (r.reused) reused++
      maxMs = Math.max(maxMs, r.ms)
      if (!r.ok) failures.push({ ...step, error: r.error, received: r.received, sawEof: r.sawEof, localPort: r.localPort })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { cycles, failures, reused, ms: Date.now() - started, maxCycleMs: maxMs }
}

serve(
  {
    init: ({ options }) => {
      recycler = new SocketRecycler(options)
      return { mode: recycler.stats().mode, baselineFds }
    },
    fds: () => fdCount(),
    stats: () => recycler.stats(),
    snmp: () => tcpCounters(),
    sockets: () => tcpSockets(),
    tcpState: ({ fd }) => tcpState(fd),
    inode: ({ fd }) => inodeOf(fd),
    transitions: ({ id }) => transitions.get(id) ?? [],
    /** One connection by its local port: its fd's transitions from checkout to the next checkout. */
    connection: ({ localPort }) => {
      const c = connections.get(localPort)
      if (!c) return null
      const all = transitions.get(c.pooledId) ?? []
      const from = all.findIndex((x) => x.t >= c.startedAt)
      let to = all.findIndex((x, i) => i > from && x.t > c.closedAt && x.to === 'connecting')
      if (to < 0) to = all.length - 1
      return { ...c, transitions: from < 0 ? [] : all.slice(from, to + 1) }
    },
    cycle,
    load,
    /** Bounded poll of stats() until every key in `until` matches (no event exists for "settled"). */
    waitStats: async ({ until, timeoutMs = 10_000 }) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const stats = recycler.stats()
        if (Object.entries(until).every(([k, v]) => stats[k] === v)) return { matched: true, stats }
        if (Date.now() > deadline) return { matched: false, stats }
        await new Promise((r) => setTimeout(r, 10))
      }
    },
    /** Bounded poll of an fd's TCP state (the kernel has no event for "the last ACK arrived"). */
    waitTcpState: async ({ fd, state, timeoutMs = 5000 }) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const now = tcpState(fd)
        if (now === state || Date.now() > deadline) return now
        await new Promise((r) => setTimeout(r, 5))
      }
    },
    close: async () => {
      await recycler.close()
      return { stats: recycler.stats(), fds: fdCount(), baselineFds }
    },
  },
  { pid: process.pid, support: { supported: support.supported, reason: support.reason ?? null }, baselineFds },
)
