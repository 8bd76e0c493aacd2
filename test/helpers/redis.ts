// Debian's redis-server processes for tests: started daemonized with a pidfile in a throwaway dir,
// stopped by the pid in that file (checked to be that redis-server first), never by name.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** One redis-server as tests see it; `args` start it again (same port, dir and node id). */
export interface RedisNode {
  port: number
  /** its --dir: logs, pidfile, nodes.conf */
  dir: string
  pidFile: string
  logFile: string
  args: string[]
  /** the address it binds (REDIS_HOST unless given) */
  host?: string
  /** a command prefix for redis-server and redis-cli, e.g. `ip netns exec NS` (a node in a namespace) */
  exec?: string[]
}

export const REDIS_HOST = '127.0.0.1'

/** Whether the process runs; a zombie (exited, not yet reaped: daemons are reparented) does not. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** The pid in the node's pidfile, if that process is alive and is redis-server on the node's port. */
export function pidOf(node: RedisNode): number | null {
  let pid: number
  try {
    pid = Number(readFileSync(node.pidFile, 'utf8').trim())
  } catch {
    return null
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return null
  // A stale pidfile's pid may belong to another process by now: check what it runs.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
    if (!cmdline.includes('redis-server') || !cmdline.includes(`:${node.port}`)) return null
  } catch {
    return null
  }
  return pid
}

/** Deadline-bounded wait on a condition that has no event to wait for (a process, a file). */
export function waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): void {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    spawnSync('sleep', ['0.05'])
  }
}

export async function waitForAsync(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** redis-cli against one node; extra args go before the command (e.g. --tls). */
export function redisCli(port: number, command: string[], extra: string[] = []): string {
  const r = spawnSync('redis-cli', ['-h', REDIS_HOST, '-p', String(port), ...extra, ...command], { encoding: 'utf8', timeout: 30_000 })
  if (r.error || r.status !== 0) throw new Error(`redis-cli -p ${port} ${command.join(' ')}: ${r.error?.message ?? r.stderr}`)
  return r.stdout
}

/** Starts (or restarts) a node daemonized and waits until it answers PING. */
export function startNode(node: RedisNode, ping: string[] = []): number {
  const [cmd, ...pre] = [...(node.exec ?? []), 'redis-server']
  const r = spawnSync(cmd!, [...pre, ...node.args], { encoding: 'utf8', timeout: 30_000 })
  if (r.error || r.status !== 0) throw new Error(`redis-server on ${node.port} did not start: ${r.error?.message ?? ''}${r.stdout}${r.stderr}${tail(node.logFile)}`)
  let pid: number | null = null
  waitFor(() => (pid = pidOf(node)) !== null, `redis-server's pidfile ${node.pidFile}`)
  waitFor(() => {
    const [cli, ...cliPre] = [...(node.exec ?? []), 'redis-cli']
    const p = spawnSync(cli!, [...cliPre, '-h', node.host ?? REDIS_HOST, '-p', String(node.port), ...ping, 'PING'], { encoding: 'utf8', timeout: 5_000 })
    return p.status === 0 && p.stdout.trim() === 'PONG'
  }, `PONG from redis-server on ${node.port}${tail(node.logFile)}`)
  return pid!
}

/** SIGTERM (or the given signal) by pid, then SIGKILL if it outlives timeoutMs. */
export function stopNode(node: RedisNode, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): void {
  const pid = pidOf(node)
  if (pid === null) return
  try {
    process.kill(pid, signal)
  } catch {}
  const deadline = Date.now() + timeoutMs
  while (alive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05'])
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
    waitFor(() => !alive(pid), `pid ${pid} to exit after SIGKILL`)
  }
}

export function tail(file: string, chars = 1500): string {
  return existsSync(file) ? `\n--- ${file} ---\n${readFileSync(file, 'utf8').slice(-chars)}` : ''
}

/**
 * The common arguments of a throwaway node: loopback (or `host`), no persistence, daemonized with a
 * pidfile. `exec` runs it under a command prefix (`ip netns exec NS`: inside a network namespace).
 */
export function nodeArgs(port: number, dir: string, extra: string[] = [], host = REDIS_HOST, exec?: string[]): RedisNode {
  const pidFile = join(dir, 'redis.pid')
  const logFile = join(dir, 'redis.log')
  const args = [
    '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no',
    '--daemonize', 'yes', '--pidfile', pidFile, '--logfile', logFile, '--dir', dir, ...extra,
  ]
  return { port, dir, pidFile, logFile, args, ...(host === REDIS_HOST ? {} : { host }), ...(exec ? { exec } : {}) }
}

/** `cluster info` of every node says ok, every node knows them all, and no node is failing. */
export function clusterHealthy(nodes: RedisNode[]): boolean {
  for (const node of nodes) {
    let info: string
    let view: string
    try {
      info = redisCli(node.port, ['CLUSTER', 'INFO'])
      view = redisCli(node.port, ['CLUSTER', 'NODES'])
    } catch {
      return false
    }
    if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${nodes.length}`)) return false
    const lines = view.trim().split('\n')
    if (lines.length !== nodes.length) return false
    if (lines.some((l) => /fail|handshake|noaddr/.test(l.split(' ')[2] ?? ''))) return false
    const masters = lines.filter((l) => (l.split(' ')[2] ?? '').includes('master')).length
    if (masters * 2 !== nodes.length) return false
  }
  return true
}
