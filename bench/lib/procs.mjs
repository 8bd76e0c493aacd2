// Child processes of the bench: the C helpers (compiled here with the machine's cc), servers in
// their own process, and the Node churn worker driven over IPC.
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { alive, killPid, onCleanup } from './cleanup.mjs'

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')
export const BUILD_DIR = join(BENCH_DIR, '.build')

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every Linux in practice). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** The machine's C compiler: $CC, cc or gcc; null if none. */
export function cCompiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc'].filter(Boolean)) {
    const r = spawnSync(cc, ['--version'], { encoding: 'utf8' })
    if (r.status === 0) return { cc, version: r.stdout.split('\n')[0] }
  }
  return null
}

/**
 * Compiles bench/native/<name>.c with `cc -O2 -pthread` into bench/.build/<name> (again only when
 * the source is newer). Returns the binary's path; throws with the compiler's output on failure.
 */
export function compileNative(name) {
  const compiler = cCompiler()
  if (!compiler) throw new Error('no C compiler (apt-get install gcc libc6-dev)')
  const src = join(BENCH_DIR, 'native', `${name}.c`)
  const out = join(BUILD_DIR, name)
  mkdirSync(BUILD_DIR, { recursive: true })
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out
  const r = spawnSync(compiler.cc, ['-O2', '-pthread', '-Wall', '-o', out, src], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${compiler.cc} -O2 ${src} failed:\n${r.stderr}`)
  return out
}

/**
 * CPU seconds (user + system) a live process has used, from /proc/<pid>/stat; NaN if gone. With
 * `tree`, also its reaped children's (cutime, cstime: PostgreSQL's backends) and its live
 * descendants' (nginx's workers).
 */
export function processCpuSeconds(pid, { tree = false } = {}) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at state: utime is field 14.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    let ticks = f[11] + f[12]
    if (tree) {
      ticks += f[13] + f[14]
      for (const child of childrenOf(pid)) {
        const c = processCpuSeconds(child, { tree: true })
        if (Number.isFinite(c)) ticks += c * CLK_TCK
      }
    }
    return ticks / CLK_TCK
  } catch {
    return Number.NaN
  }
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Spawns a server that prints its port(s) on its first line of stdout, and resolves once it has.
 * Registered for cleanup: stopped by its pid (SIGTERM, then SIGKILL) when the run ends.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ name: string, timeoutMs?: number, env?: NodeJS.ProcessEnv }} options
 * @returns {Promise<{ pid: number, line: string, ports: number[], stop: () => void, cpuSeconds: () => number }>}
 */
export async function startLineServer(cmd, args, { name, timeoutMs = 15_000, env }) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const stop = onCleanup(`${name} (pid ${child.pid})`, () => stopPid(child.pid))
  const lines = createInterface({ input: child.stdout })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  try {
    const first = await Promise.race([
      once(lines, 'line').then(([l]) => l),
      once(child, 'exit').then(([code, signal]) => {
        throw new Error(`${name} exited (${code ?? signal}) before printing its port: ${stderr.trim()}`)
      }),
    ])
    lines.on('line', () => {}) // keep draining
    const ports = first.trim().split(/\s+/).map(Number)
    if (ports.some((p) => !Number.isInteger(p) || p <= 0)) throw new Error(`${name} printed "${first}" instead of its port(s)`)
    return { pid: child.pid, line: first, ports, stop, cpuSeconds: () => processCpuSeconds(child.pid) }
  } catch (err) {
    stop()
    throw err
  } finally {
    clearTimeout(timer)
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

/** SIGTERM, then SIGKILL after up to 2 s if still alive (synchronous: usable at exit). */
export function stopPid(pid) {
  if (!killPid(pid, 'SIGTERM')) return
  const deadline = Date.now() + 2000
  while (alive(pid) && Date.now() < deadline) {
    if (zombie(pid)) break
    Atomics.wait(SLEEPER, 0, 0, 20) // a synchronous bounded poll: this also runs at process exit
  }
  if (alive(pid) && !zombie(pid)) killPid(pid, 'SIGKILL')
}

function zombie(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? false
  } catch {
    return true
  }
}

/**
 * Runs a command to completion and parses the last JSON line of its stdout.
 * @returns {Promise<any>}
 */
export async function runJson(cmd, args, { timeoutMs = 120_000, env, name = cmd } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
  const stop = onCleanup(`${name} (pid ${child.pid})`, () => stopPid(child.pid))
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code, signal] = await once(child, 'close')
  clearTimeout(timer)
  stop()
  if (code === 0) {
    // The whole of stdout as one JSON document (pretty-printed), or else its last JSON line.
    try {
      return JSON.parse(stdout)
    } catch {}
    const line = stdout.trim().split('\n').reverse().find((l) => l.trim().startsWith('{'))
    if (line) return JSON.parse(line)
  }
  throw new Error(`${name} ${args.join(' ')} failed (${code ?? signal}): ${stderr.trim().slice(-800) || stdout.trim().slice(-800)}`)
}

/**
 * Forks bench/clients/churn-worker.mjs: one long-lived Node client process (JIT warm across
 * rounds, one recycler for its lifetime, as a service has) that runs one measured batch per
 * request. `request(msg)` resolves with its reply.
 */
export function forkWorker(execArgv = []) {
  const child = fork(join(BENCH_DIR, 'clients', 'churn-worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv })
  const stop = onCleanup(`churn worker (pid ${child.pid})`, () => stopPid(child.pid))
  let pending = null
  let exited = null
  child.on('message', (msg) => {
    const p = pending
    pending = null
    if (!p) return
    if (msg && msg.error) p.reject(Object.assign(new Error(msg.error), { stack: msg.stack }))
    else p.resolve(msg)
  })
  child.on('exit', (code, signal) => {
    exited = code ?? signal
    if (pending) pending.reject(new Error(`churn worker exited (${exited}) during a request`))
    pending = null
  })
  return {
    pid: child.pid,
    request(msg, timeoutMs = 180_000) {
      if (exited !== null) return Promise.reject(new Error(`churn worker exited (${exited})`))
      if (pending) return Promise.reject(new Error('churn worker is busy'))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending = null
          reject(new Error(`churn worker did not answer ${msg.cmd} ${msg.kind ?? ''} ${msg.mode ?? ''} within ${timeoutMs} ms`))
        }, timeoutMs)
        pending = {
          resolve: (v) => (clearTimeout(timer), resolve(v)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        }
        child.send(msg)
      })
    },
    async close() {
      if (exited === null) {
        try {
          await this.request({ cmd: 'exit' }, 10_000)
        } catch {}
      }
      stop()
    },
  }
}
