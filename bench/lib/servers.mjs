// Real servers for the pg and ioredis scenarios: Debian's PostgreSQL and redis-server, started
// here on a free loopback port in a temp dir, listening on several loopback addresses (each mode
// of the TIME_WAIT phase gets its own destination), stopped by pid when the scenario ends (also on
// failure, on a signal, at exit), the temp dir removed.
import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, appendFileSync, writeFileSync, rmSync, chmodSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { alive, killPid, onCleanup } from './cleanup.mjs'
import { stopPid } from './procs.mjs'

/** Loopback addresses a server listens on: [0] for the A/B rounds, [1] and [2] for the TIME_WAIT phase. */
export const LOOPBACKS = ['127.0.0.1', '127.0.0.2', '127.0.0.3']

export class SkipError extends Error {
  skip = true
}

/** A port free on every address of LOOPBACKS at this moment. */
export async function freePort() {
  for (let i = 0; i < 20; i++) {
    const port = await listenClose(0, LOOPBACKS[0])
    let ok = true
    for (const host of LOOPBACKS.slice(1)) {
      try {
        await listenClose(port, host)
      } catch {
        ok = false
        break
      }
    }
    if (ok) return port
  }
  throw new Error(`no port free on ${LOOPBACKS.join(', ')}`)
}

function listenClose(port, host) {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(port, host, () => {
      const p = server.address().port
      server.close(() => resolve(p))
    })
  })
}

/** Resolves once host:port accepts a connection; rejects after timeoutMs or if `exited()` says so. */
export async function waitListening(host, port, timeoutMs, exited = () => null) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const why = exited()
    if (why) throw new Error(why)
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25)) // bounded poll: no event says "listening"
  }
}

function pgBinDir() {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root)
    ? readdirSync(root).map(Number).filter((v) => Number.isInteger(v) && existsSync(join(root, String(v), 'bin', 'pg_ctl'))).sort((a, b) => b - a)
    : []
  return versions.length > 0 ? { bin: join(root, String(versions[0]), 'bin'), version: versions[0] } : null
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.error || r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stdout}${r.stderr}`)
  return r.stdout
}

/**
 * A throwaway PostgreSQL: initdb in a temp dir (as the `postgres` user when root: initdb refuses
 * root; as the current user otherwise), pg_ctl start on a free port, listening on LOOPBACKS, trust
 * auth on loopback.
 * @returns {Promise<{ port: number, pid: number, version: number, user: string, database: string, stop: () => void }>}
 */
export async function startPostgres() {
  const found = pgBinDir()
  if (!found) throw new SkipError('no PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin (apt-get install postgresql)')
  const { bin, version } = found
  const isRoot = process.getuid?.() === 0
  /** [cmd, args] running a PostgreSQL binary as the user it accepts. */
  const asPostgres = (args) => (isRoot ? ['runuser', ['-u', 'postgres', '--', ...args]] : [args[0], args.slice(1)])
  let ids = null
  if (isRoot) {
    try {
      ids = { uid: Number(run('id', ['-u', 'postgres'], 'id').trim()), gid: Number(run('id', ['-g', 'postgres'], 'id').trim()) }
    } catch {
      throw new SkipError('no `postgres` user to run initdb as')
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-bench-pg-'))
  chmodSync(dir, 0o755)
  const data = join(dir, 'data')
  const sock = join(dir, 'sock')
  const removeDir = onCleanup(`pg temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  spawnSync('mkdir', [sock])
  if (ids) {
    chownSync(dir, ids.uid, ids.gid)
    chownSync(sock, ids.uid, ids.gid)
  }
  run(...asPostgres([join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']), 'initdb')
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.0/8 trust\n')
  appendFileSync(join(data, 'postgresql.conf'), [
    '', '# fdrecycle bench: a throwaway cluster', 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off',
    'shared_buffers = 32MB', 'max_connections = 100', 'log_min_messages = warning', '',
  ].join('\n'))
  const pidOf = () => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]) || null
    } catch {
      return null
    }
  }
  const stop = onCleanup('postgres', () => {
    const pid = pidOf()
    if (pid && alive(pid)) {
      spawnSync(...asPostgres([join(bin, 'pg_ctl'), 'stop', '-m', 'immediate', '-w', '-t', '20', '-D', data]), { timeout: 30_000 })
      if (alive(pid)) killPid(pid, 'SIGKILL')
    }
  })
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const r = spawnSync(...asPostgres([join(bin, 'pg_ctl'), 'start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'pg.log'),
      '-o', `-p ${port} -k ${sock} -c listen_addresses=${LOOPBACKS.join(',')}`]), { encoding: 'utf8', timeout: 90_000 })
    const pid = pidOf()
    if (r.status === 0 && pid) {
      return { port, pid, version, user: 'postgres', database: 'postgres', stop: () => (stop(), removeDir()) }
    }
    lastError = new Error(`pg_ctl start failed: ${r.stderr}${existsSync(join(dir, 'pg.log')) ? readFileSync(join(dir, 'pg.log'), 'utf8').slice(-1000) : ''}`)
  }
  stop()
  removeDir()
  throw lastError
}

/**
 * A throwaway redis-server as our child (no daemonize: its pid is the child's), --save '' in a temp
 * dir, bound to LOOPBACKS.
 * @returns {Promise<{ port: number, pid: number, version: string, stop: () => void }>}
 */
export async function startRedis() {
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (which.error || which.status !== 0) throw new SkipError('redis-server is not installed (apt-get install redis-server)')
  const version = /v=(\S+)/.exec(which.stdout)?.[1] ?? 'unknown'
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-bench-redis-'))
  const removeDir = onCleanup(`redis temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', LOOPBACKS.join(' '), '--save', '', '--appendonly', 'no', '--dir', dir,
      '--daemonize', 'no', '--protected-mode', 'no', '--maxclients', '10000', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    let exited = null
    child.once('exit', (code, signal) => (exited = `redis-server exited (${code ?? signal}): ${stderr.trim()}`))
    const stop = onCleanup(`redis-server (pid ${child.pid})`, () => stopPid(child.pid))
    try {
      await waitListening(LOOPBACKS[0], port, 15_000, () => exited)
      return { port, pid: child.pid, version, stop: () => (stop(), removeDir()) }
    } catch (err) {
      lastError = err
      stop()
    }
  }
  removeDir()
  throw lastError
}

/**
 * A throwaway MariaDB as our child: mariadb-install-db into a temp dir (as the `mysql` user when
 * root), mariadbd on a free port bound to LOOPBACKS, a user `bench` (password `bench`) for TCP.
 * @returns {Promise<{ port: number, pid: number, version: string, user: string, password: string, database: string, stop: () => void }>}
 */
export async function startMariaDb() {
  const which = spawnSync('mariadbd', ['--version'], { encoding: 'utf8' })
  if (which.error || which.status !== 0) throw new SkipError('mariadbd is not installed (apt-get install mariadb-server)')
  const version = /Ver\s+(\S+)/.exec(which.stdout)?.[1] ?? 'unknown'
  const isRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-bench-mariadb-'))
  const removeDir = onCleanup(`mariadb temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const socket = join(dir, 'mariadb.sock')
  const user = isRoot ? ['--user=mysql'] : []
  if (isRoot) {
    const uid = Number(run('id', ['-u', 'mysql'], 'id').trim())
    const gid = Number(run('id', ['-g', 'mysql'], 'id').trim())
    chownSync(dir, uid, gid)
  }
  run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, ...user, '--auth-root-authentication-method=socket', '--skip-test-db', '--skip-name-resolve'], 'mariadb-install-db')
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn('mariadbd', [
      '--no-defaults', `--datadir=${data}`, ...user, `--port=${port}`, `--socket=${socket}`, `--bind-address=${LOOPBACKS.join(',')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`, `--log-error=${join(dir, 'error.log')}`, '--skip-name-resolve', '--skip-log-bin',
      '--innodb-buffer-pool-size=32M', '--max-connections=500', '--performance-schema=off',
    ], { stdio: 'ignore' })
    let exited = null
    child.once('exit', (code, signal) => (exited = `mariadbd exited (${code ?? signal}): ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-1000) : ''}`))
    const stop = onCleanup(`mariadbd (pid ${child.pid})`, () => stopPid(child.pid))
    try {
      await waitListening(LOOPBACKS[0], port, 60_000, () => exited)
      run('mariadb', ['--no-defaults', '-S', socket, '-u', 'root', '-e',
        "CREATE DATABASE IF NOT EXISTS bench; CREATE USER IF NOT EXISTS 'bench'@'%' IDENTIFIED BY 'bench'; GRANT ALL ON bench.* TO 'bench'@'%';"], 'mariadb (create user)')
      return { port, pid: child.pid, version, user: 'bench', password: 'bench', database: 'bench', stop: () => (stop(), removeDir()) }
    } catch (err) {
      lastError = err
      stop()
    }
  }
  removeDir()
  throw lastError
}
