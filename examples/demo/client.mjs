// The demo's "service": the client, in a process of its own, so that what it costs (CPU, sockets,
// ports) is measured apart from the backends and from the demo's own bookkeeping. One long-lived
// process with one SocketRecycler, as a service has. Driven by index.mjs over IPC:
//   { cmd: 'setup', targets: { plain, recycled, warm }, pg?, redis? }
//   { cmd: 'run', workload: 'backends' | 'warm' | 'pg' | 'redis', mode, n, inFlight } → batch result
//   { cmd: 'summary' } → sockets seen per mode, recycler stats
//   { cmd: 'exit' }
// While a batch runs it sends `{ progress: finished }` about 20 times.
import { readdirSync, readFileSync } from 'node:fs'
import { SocketRecycler, isRecyclingSupported, recyclingSupport } from '@fdrecycle/core'
import { churn, makeClient } from './churn.mjs'

let recycler = null
let RecycledAgent = null
const clients = new Map()
const inodes = { plain: new Set(), recycled: new Set(), warm: new Set() }
const real = {}

const COUNTERS = ['fdsCreated', 'connections', 'reusedConnections', 'peerClosedFirst', 'finSentFirst', 'resetsSent', 'drainTimeouts']
const counters = () => Object.fromEntries(COUNTERS.map((k) => [k, recycler.stats()[k]]))

async function setup({ targets, pg, redis }) {
  recycler = new SocketRecycler()
  if (targets.plain.http.length > 0) ({ RecycledAgent } = await import('@fdrecycle/http-adapter'))
  for (const mode of ['plain', 'recycled']) {
    clients.set(`backends:${mode}`, makeClient(mode, targets[mode], { recycler, RecycledAgent, inodes: inodes[mode] }))
    // Warm-up on backends of its own: the JIT and the recycler's first fds, out of the counts.
    clients.set(`warm:${mode}`, makeClient(mode, targets.warm, { recycler, RecycledAgent, inodes: inodes.warm }))
  }
  const servers = await import('./real-servers.mjs')
  for (const [name, url, load] of [['pg', pg, servers.pgWorkload], ['redis', redis, servers.redisWorkload]]) {
    if (!url) continue
    try {
      const workload = await load(url)
      real[name] = { plain: workload('plain', recycler), recycled: workload('recycled', recycler) }
      clients.set(`${name}:plain`, real[name].plain)
      clients.set(`${name}:recycled`, real[name].recycled)
    } catch (err) {
      real[name] = { error: err.message }
    }
  }
  return {
    recycling: isRecyclingSupported() ? { supported: true } : { supported: false, reason: recyclingSupport().reason },
    real: Object.fromEntries(Object.entries(real).map(([k, v]) => [k, v.error ? { error: v.error } : { host: v.plain.host, port: v.plain.port }])),
  }
}

/**
 * CPU time of this process's threads other than the main one, in µs (Linux: schedstat, in ns):
 * V8's compiler and garbage-collector helpers, libuv's pool. Their time is part of the client's CPU
 * (process.cpuUsage counts every thread); while V8 is still compiling the client's code it is a
 * large part, which is why the warm-up runs until it is small. null where /proc has no schedstat.
 */
function helperThreadsUs() {
  let ns = 0
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      if (Number(tid) === process.pid) continue
      try {
        ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      } catch {
        // the thread ended in between
      }
    }
  } catch {
    return null
  }
  return Number.isFinite(ns) ? ns / 1000 : null
}

async function run({ workload, mode, n, inFlight }) {
  const client = clients.get(`${workload}:${mode}`)
  if (!client) throw new Error(`no client for ${workload} ${mode}${real[workload]?.error ? `: ${real[workload].error}` : ''}`)
  const every = Math.max(1, Math.floor(n / 20))
  const before = counters()
  const helpers0 = helperThreadsUs()
  const r = await churn(client, n, inFlight, (k) => {
    if (k % every === 0 && k < n) process.send({ progress: k })
  })
  const helpers1 = helperThreadsUs()
  const after = counters()
  const helperCpuUs = helpers0 === null || helpers1 === null ? null : helpers1 - helpers0
  return { ...r, helperCpuUs, recycler: Object.fromEntries(COUNTERS.map((k) => [k, after[k] - before[k]])) }
}

async function handle(msg) {
  switch (msg.cmd) {
    case 'setup':
      return setup(msg)
    case 'run':
      return run(msg)
    case 'summary':
      return {
        distinctSockets: { plain: inodes.plain.size, recycled: inodes.recycled.size },
        recycler: recycler.stats(),
        localPorts: Object.fromEntries(Object.entries(real).filter(([, v]) => !v.error).map(([k, v]) => [k, { plain: [...v.plain.localPorts], recycled: [...v.recycled.localPorts] }])),
        realSockets: Object.fromEntries(Object.entries(real).filter(([, v]) => !v.error).map(([k, v]) => [k, { plain: v.plain.inodes.size, recycled: v.recycled.inodes.size }])),
      }
    case 'exit':
      await recycler?.close()
      setImmediate(() => process.exit(0))
      return { ok: true }
    default:
      throw new Error(`unknown command ${msg.cmd}`)
  }
}

if (!process.send) {
  process.stderr.write('client.mjs is started by index.mjs (npm run demo)\n')
  process.exit(2)
}
process.on('message', (msg) => {
  handle(msg).then(
    (reply) => process.send({ reply }),
    (err) => process.send({ error: err.stack ?? String(err) }),
  )
})
process.on('disconnect', () => process.exit(0)) // the demo ended (or died): nothing outlives it
