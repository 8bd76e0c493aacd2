// Vitest globalSetup of the `mysql` project: a throwaway MariaDB server from Debian's packages, on
// loopback, on a free port, with its datadir in a temp dir; stopped by pid and removed afterwards
// (also when tests fail, and at process exit if teardown never ran). Tests never touch a server
// the machine runs. One server serves plain and TLS clients (a self-signed certificate made here);
// `require_secure_transport` stays off so that both connect to the same port.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { ensureDebianPackages } from '../../scripts/system-deps.mjs'
import { selfSignedCert } from '../helpers/certs.js'
import { freePort, hasIpv6Loopback } from './postgres.js'
import { pidAlive, runDir } from './run-dirs.js'

/** The server as tests see it. */
export interface MariaDbTestServer {
  port: number
  /** its Unix socket (`socketPath`) */
  socketPath: string
  /** whether it listens on ::1 too (false where the machine has no IPv6 loopback) */
  ipv6: boolean
  pid: number
  /** a user with a password (mysql_native_password), from any loopback address */
  user: string
  password: string
  /** a second user, for changeUser */
  other: { user: string; password: string }
  database: string
  /** the self-signed certificate (PEM), for `ssl: { ca }` */
  ca: string
  /** `SELECT VERSION()` */
  version: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    mariadb: MariaDbTestServer
  }
}

const PREFIX = 'fdrecycle-mariadb-'

function log(message: string): void {
  process.stderr.write(`[mariadb setup] ${message}\n`)
}

function run(cmd: string, args: string[], what: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`)
  }
  return r
}

const isRoot = process.getuid?.() === 0

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name)
    if (entry.isDirectory()) chownTree(p, uid, gid)
    else chownSync(p, uid, gid)
  }
}

/** The pid in a server dir's pid file (a run killed before its teardown is stopped by it). */
export function mariaDbPid(dir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dir, 'mariadb.pid'), 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** SIGTERM (mariadbd shuts down cleanly on it), SIGKILL if it outlives 30 s. */
export async function stopMariaDb(pid: number | null): Promise<void> {
  if (pid === null || !pidAlive(pid)) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {}
  const deadline = Date.now() + 30_000
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  if (pidAlive(pid)) {
    log(`mariadbd ${pid} outlived SIGTERM; sending SIGKILL`)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

/** The mariadb CLI as root over the server's Unix socket (root has no password there). */
function sql(socketPath: string, statements: string): string {
  return run('mariadb', ['--no-defaults', '-S', socketPath, '-u', 'root', '-N', '-B', '-e', statements], 'mariadb client').stdout.trim()
}

// mariadbd will not run as root without --user: as root it runs as Debian's `mysql` user.
const asUser = (): string[] => (isRoot ? ['--user=mysql'] : [])

/**
 * A throwaway datadir in `dir` (`dir/data`); as root, `dir` and what it holds (the certificate)
 * then belong to `mysql`.
 */
export function initMariaDb(dir: string): void {
  const data = join(dir, 'data')
  mkdirSync(data)
  // Its own temporary directory: mariadbd's default is /tmp, where two set-ups bootstrapping at
  // once (two test runs) have failed each other's installs (ERROR 1051 tmp_proxies_priv).
  mkdirSync(join(dir, 'tmp'))
  if (isRoot) {
    const uid = Number(run('id', ['-u', 'mysql'], 'id -u mysql').stdout.trim())
    const gid = Number(run('id', ['-g', 'mysql'], 'id -g mysql').stdout.trim())
    chownTree(dir, uid, gid)
  }
  run('mariadb-install-db', [
    '--no-defaults', `--datadir=${data}`, ...asUser(), '--auth-root-authentication-method=socket', '--skip-test-db',
    '--skip-name-resolve', '--innodb-buffer-pool-size=16M', `--tmpdir=${join(dir, 'tmp')}`,
  ], 'mariadb-install-db')
}

export interface MariaDbStart {
  /** the dir `initMariaDb` prepared: datadir, Unix socket, pid file, error log */
  dir: string
  port: number
  /** mariadbd's --bind-address (a comma-separated list) */
  bindAddress: string
  /** PEM files of the server's TLS certificate and key, readable by the server's user */
  cert: string
  key: string
  /** a command prefix (`ip netns exec NS`): the server then lives in that network namespace */
  exec?: string[]
}

export interface MariaDbStarted {
  pid: number
  socketPath: string
  user: string
  password: string
  other: { user: string; password: string }
  database: string
  version: string
}

/**
 * Starts mariadbd on a datadir from `initMariaDb` and creates the test users and database. Throws
 * (with the end of the server's log) if it exits or is not ready within 120 s; it is then stopped.
 */
export async function startMariaDb({ dir, port, bindAddress, cert, key, exec = [] }: MariaDbStart): Promise<MariaDbStarted> {
  const socketPath = join(dir, 'mariadb.sock')
  const logFile = join(dir, 'error.log')
  const args = [
    'mariadbd', '--no-defaults', `--datadir=${join(dir, 'data')}`, ...asUser(), `--port=${port}`, `--socket=${socketPath}`,
    `--bind-address=${bindAddress}`, `--pid-file=${join(dir, 'mariadb.pid')}`,
    `--log-error=${logFile}`, '--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=16M',
    '--innodb-log-file-size=8M', '--max-connections=200', '--performance-schema=off',
    `--ssl-cert=${cert}`, `--ssl-key=${key}`, `--tmpdir=${join(dir, 'tmp')}`,
  ]
  const full = [...exec, ...args]
  const child = spawn(full[0]!, full.slice(1), { stdio: 'ignore', detached: true })
  child.unref()
  let code: number | null | undefined
  child.once('exit', (c) => (code = c))
  const deadline = Date.now() + 120_000
  // A bounded poll: the server says nothing when it is ready but answers on its socket (a Unix
  // socket by path: reachable from any network namespace).
  while (code === undefined && Date.now() < deadline) {
    if (existsSync(socketPath) && spawnSync('mariadb-admin', ['--no-defaults', '-S', socketPath, '-u', 'root', 'ping'], { stdio: 'ignore' }).status === 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (code !== undefined || Date.now() >= deadline) {
    await stopMariaDb(mariaDbPid(dir) ?? child.pid ?? null)
    throw new Error(`mariadbd did not start on port ${port}:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`)
  }
  // `ip netns exec` execs the server: the child's pid is the server's either way
  const pid = child.pid ?? mariaDbPid(dir)!
  const password = `pw-${Math.random().toString(36).slice(2)}`
  const otherPassword = `pw-${Math.random().toString(36).slice(2)}`
  sql(socketPath, [
    'CREATE DATABASE fdrecycle;',
    `CREATE USER 'fdrecycle'@'%' IDENTIFIED BY '${password}';`,
    "GRANT ALL ON *.* TO 'fdrecycle'@'%';",
    `CREATE USER 'fdrecycle_other'@'%' IDENTIFIED BY '${otherPassword}';`,
    "GRANT ALL ON fdrecycle.* TO 'fdrecycle_other'@'%';",
  ].join(' '))
  const version = sql(socketPath, 'SELECT VERSION()')
  return { pid, socketPath, user: 'fdrecycle', password, other: { user: 'fdrecycle_other', password: otherPassword }, database: 'fdrecycle', version }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  ensureDebianPackages(['mariadb-server', 'mariadb-client', 'openssl'])
  const dir = runDir(PREFIX, (stale) => {
    const pid = mariaDbPid(stale)
    if (pid !== null && pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }, log)
  let pid: number | null = null
  let stopped = false
  const teardown = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await stopMariaDb(pid ?? mariaDbPid(dir))
    rmSync(dir, { recursive: true, force: true })
  }
  // If the process exits without running teardown (a crash, a forced exit), kill it still.
  const onExit = (): void => {
    const p = pid ?? mariaDbPid(dir)
    if (!stopped && p !== null && pidAlive(p)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {}
    }
  }
  process.once('exit', onExit)

  try {
    const cert = selfSignedCert()
    writeFileSync(join(dir, 'server.crt'), cert.cert)
    writeFileSync(join(dir, 'server.key'), cert.key, { mode: 0o600 })
    initMariaDb(dir)

    const ipv6 = await hasIpv6Loopback()
    let lastError: unknown
    for (let attempt = 0; attempt < 3 && pid === null; attempt++) {
      const port = await freePort(ipv6)
      try {
        const server = await startMariaDb({
          dir, port, bindAddress: ipv6 ? '127.0.0.1,::1' : '127.0.0.1', cert: join(dir, 'server.crt'), key: join(dir, 'server.key'),
        })
        pid = server.pid
        project.provide('mariadb', { ...server, port, ipv6, ca: cert.cert.toString('utf8') })
        log(`MariaDB ${server.version} on ${port}${ipv6 ? ' (127.0.0.1 and ::1)' : ' (127.0.0.1 only: no IPv6 loopback)'}, ready in ${Date.now() - started} ms`)
      } catch (err) {
        lastError = err
      }
    }
    if (pid === null) throw lastError
  } catch (err) {
    await teardown()
    process.removeListener('exit', onExit)
    throw err
  }

  return async () => {
    await teardown()
    process.removeListener('exit', onExit)
  }
}
