// One arm of bench/demo-profile.mjs: the demo's own client code (examples/demo/churn.mjs) in a
// fresh process, against the demo's backends. Prints one JSON line: the measured batch's CPU
// time (process.cpuUsage) and seconds; with `profile` (a file path) the V8 CPU profile of the
// measured batch alone (not start-up, not the warm-up) goes to that file.
//   node demo-worker.mjs '{"mode":"recycled","targets":{"line":[...],"http":[...]},"n":3000,"warmup":1000,"inFlight":16}'
import { SocketRecycler } from '@fdrecycle/core'
import { RecycledAgent } from '@fdrecycle/http-adapter'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { PerformanceObserver } from 'node:perf_hooks'
import { churn, makeClient } from '../../examples/demo/churn.mjs'

const msg = JSON.parse(process.argv[2])
const recycler = msg.mode === 'recycled' ? new SocketRecycler(msg.recyclerOptions ?? {}) : null
const client = makeClient(msg.mode, msg.targets, { recycler, RecycledAgent, inodes: new Set() })
if (msg.warmup > 0) await churn(client, msg.warmup, msg.inFlight)
let session = null
let post = null
if (msg.profile) {
  const { Session } = await import('node:inspector')
  session = new Session()
  session.connect()
  post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))))
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: msg.profileIntervalUs ?? 100 })
  await post('Profiler.start')
}
// CPU time of the main thread and of the others (Linux: /proc/self/task/*/stat, clock ticks), so that work on libuv's
// thread pool or V8's helper threads shows apart from the main thread's.
function threadTicks() {
  const out = {}
  let tasks = []
  try {
    tasks = readdirSync('/proc/self/task')
  } catch {
    return out
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      // Node 20 names every thread "node": the main thread is the one whose id is the pid.
      const name = Number(tid) === process.pid ? 'main' : 'others'
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const t = out[name] ?? (out[name] = { user: 0, sys: 0 })
      t.user += Number(f[11])
      t.sys += Number(f[12])
    } catch {}
  }
  return out
}
// `perfControl`: the control fifo of `perf record -D -1 --control fifo:PATH`, so that perf samples
// the measured batch alone.
const perf = (command) => msg.perfControl && writeFileSync(msg.perfControl, `${command}\n`)
perf('enable')
const ticks0 = threadTicks()
// Garbage collections in the measured batch: count, pause time, heap after.
const gc = { count: 0, ms: 0, major: 0 }
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++
    gc.ms += e.duration
    if (e.detail?.kind === 4 /* NODE_PERFORMANCE_GC_MAJOR */) gc.major++
  }
})
observer.observe({ entryTypes: ['gc'] })
const result = await churn(client, msg.n, msg.inFlight)
observer.disconnect()
perf('disable')
const threads = {}
for (const [name, t] of Object.entries(threadTicks())) {
  const user = t.user - (ticks0[name]?.user ?? 0)
  const sys = t.sys - (ticks0[name]?.sys ?? 0)
  if (user + sys > 0) threads[name] = { user, sys }
}
gc.heapUsedMB = Math.round(process.memoryUsage().heapUsed / 2 ** 20)
if (session) {
  const { profile } = await post('Profiler.stop')
  session.disconnect()
  writeFileSync(msg.profile, JSON.stringify(profile))
}
const stats = recycler ? recycler.stats() : null
if (recycler) await recycler.close()
process.stdout.write(`${JSON.stringify({ ...result, gc, threads, stats, pid: process.pid })}\n`)
process.exit(0)
