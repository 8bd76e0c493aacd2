// Linux perf on one process: `perf record` of a command with sampling switched on and off by the
// command itself (a control fifo), and the samples grouped into buckets that say whose CPU time
// it was: the kernel per syscall, JS under @fdrecycle/core frames, other JS, V8's compiler and GC
// threads. perf's cpu-clock samples count only time on a CPU, so a loaded machine does not
// inflate them (V8's own profiler weighs samples by wall-clock time).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

export const PERF_HZ = 1999

export function perfAvailable() {
  const r = spawnSync('perf', ['record', '-q', '-o', '/dev/null', '--', 'true'], { encoding: 'utf8' })
  if (r.error) return { ok: false, reason: 'perf is not installed (apt-get install linux-perf)' }
  if (r.status !== 0) return { ok: false, reason: `perf cannot record here: ${r.stderr.trim().split('\n')[0]}` }
  return { ok: true }
}

/**
 * Runs `node nodeArgs...` under `perf record -g -D -1 --control fifo:…`; the node process gets the
 * fifo's path from `withFifo(path)` (its arguments) and writes `enable` / `disable` to it around
 * what is to be measured. Resolves with the command's last JSON line and the data file.
 */
export async function perfRecord(dir, name, nodeArgs, withFifo) {
  const fifo = join(dir, `${name}.ctl`)
  const data = join(dir, `${name}.data`)
  rmSync(fifo, { force: true })
  execFileSync('mkfifo', [fifo])
  const child = spawn('perf', ['record', '-q', '-F', String(PERF_HZ), '-g', '-D', '-1', '--control', `fifo:${fifo}`, '-o', data, '--',
    process.execPath, '--perf-basic-prof-only-functions', ...withFifo(nodeArgs, fifo)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  rmSync(fifo, { force: true })
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'))
  if (code !== 0 || !line) throw new Error(`perf record ${name} failed (${code}): ${stderr.trim().slice(-500)}`)
  return { result: JSON.parse(line), data }
}

/** Samples of a perf data file: { tid, frames: [{ sym, dso }] } (leaf first). */
function samples(data) {
  const out = execFileSync('perf', ['script', '-i', data], { encoding: 'utf8', maxBuffer: 1 << 30 })
  const list = []
  for (const block of out.split('\n\n')) {
    const lines = block.trim().split('\n')
    if (lines.length < 2) continue
    const tid = lines[0].trim().split(/\s+/)[1]
    const frames = []
    for (const l of lines.slice(1)) {
      const m = /^\s*[0-9a-f]+ (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$/.exec(l)
      if (m) frames.push({ sym: m[1], dso: m[2] })
    }
    list.push({ tid, frames })
  }
  return list
}

/**
 * Sample counts per bucket. A sample on another thread than the busiest one (the main thread) is
 * V8's compiler, its GC or the rest; on the main thread a syscall names its bucket (the kernel's
 * work inside it, loopback delivery to the peer included); else user time under a core frame
 * (koffi's calls lose their callers: counted as core), under other JS, or without any JS frame.
 */
export function buckets(data) {
  const list = samples(data)
  const byTid = new Map()
  for (const s of list) byTid.set(s.tid, (byTid.get(s.tid) ?? 0) + 1)
  const main = [...byTid].sort((a, b) => b[1] - a[1])[0]?.[0]
  const counts = new Map()
  const add = (k) => counts.set(k, (counts.get(k) ?? 0) + 1)
  for (const { tid, frames } of list) {
    const syms = frames.map((f) => f.sym)
    if (tid !== main) {
      add(syms.some((s) => s.includes('compiler::')) ? 'other threads: V8 compiler' : syms.some((s) => /Scaveng|Marking|Sweeper|Evacuat/.test(s)) ? 'other threads: GC' : 'other threads: rest')
      continue
    }
    const sys = syms.find((s) => s.startsWith('__x64_sys_') || s.startsWith('__arm64_sys_'))
    if (sys) add(`kernel: ${sys.replace(/^__(x64|arm64)_sys_/, '')}`)
    else if (frames[0]?.dso.includes('kernel')) add('kernel: other (faults, softirq)')
    else if (frames.some((f) => f.sym.includes('/packages/core/') || f.sym.includes('@fdrecycle/core') || f.dso.includes('koffi'))) add('user: under core JS (and koffi)')
    else if (syms.some((s) => s.startsWith('JS:'))) add('user: other JS (Node, the client)')
    else add('user: no JS frame (libuv, GC, V8 runtime)')
  }
  return { counts, total: list.length }
}
