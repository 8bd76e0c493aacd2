// Vitest globalSetup of the `pg` project: two throwaway PostgreSQL servers from Debian's packages,
// on loopback, on free ports, in a temp dir; stopped by pid and removed afterwards (also when tests
// fail, and at process exit if teardown never ran). Tests never touch a server the machine runs.
//   plain: trust for every role but one (SCRAM-SHA-256 for `scram.user`)
//   tls:   the same with `ssl = on` and a self-signed certificate made here with openssl
import { pidAlive, runDir } from './run-dirs.js'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, appendFileSync, chmodSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import { ensureDebianPackages } from '../../scripts/system-deps.mjs'

/** One server as tests see it. */
export interface PgTestServer {
  name: 'plain' | 'tls'
  port: number
  /** the directory of its Unix socket (`<socketDir>/.s.PGSQL.<port>`) */
  socketDir: string
  /** whether it listens on ::1 too (false where the machine has no IPv6 loopback) */
  ipv6: boolean
  pid: number
}

export interface PgTestServers {
  plain: PgTestServer
  tls: PgTestServer
  /** superuser with trust auth on every server */
  user: string
  database: string
  /** a role that must authenticate with SCRAM-SHA-256 over TCP, on both servers */
  scram: { user: string; password: string }
  /** the self-signed certificate of the `tls` server (PEM), for `ssl: { ca }` */
  ca: string
  /** PostgreSQL's major version */
  version: number
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: PgTestServers
  }
}

const PREFIX = 'fdrecycle-pg-'

function log(message: string): void {
  process.stderr.write(`[pg setup] ${message}\n`)
}

function run(cmd: string, args: string[], what: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`)
  }
  return r
}

export const isRoot = process.getuid?.() === 0

/**
 * initdb and pg_ctl refuse to run as root: as root they run as Debian's `postgres` user. `exec` is a
 * command prefix (`ip netns exec NS`: the server then lives in that network namespace).
 */
export function asPostgres(args: string[], what: string, exec: string[] = []): SpawnSyncReturns<string> {
  const full = [...exec, ...(isRoot ? ['runuser', '-u', 'postgres', '--'] : []), ...args]
  return run(full[0]!, full.slice(1), what)
}

/** The newest /usr/lib/postgresql/<major>/bin (the version differs between Debian releases). */
export function findBinDir(): { bin: string; version: number } {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root)
    ? readdirSync(root).map(Number).filter((v) => Number.isInteger(v) && existsSync(join(root, String(v), 'bin', 'pg_ctl'))).sort((a, b) => b - a)
    : []
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${root}/<version>/bin (apt-get install postgresql)`)
  return { bin: join(root, String(versions[0]), 'bin'), version: versions[0]! }
}

export function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name)
    if (entry.isDirectory()) chownTree(p, uid, gid)
    else chownSync(p, uid, gid)
  }
}

export function postgresIds(): { uid: number; gid: number } {
  const out = run('id', ['-u', 'postgres'], 'id -u postgres').stdout.trim()
  const gid = run('id', ['-g', 'postgres'], 'id -g postgres').stdout.trim()
  return { uid: Number(out), gid: Number(gid) }
}


export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** Stops a server by its postmaster's pid: pg_ctl's fast shutdown, then SIGKILL if it outlives it. */
export function stopServer(bin: string, dataDir: string): void {
  const pid = postmasterPid(dataDir)
  if (pid === null || !pidAlive(pid)) return
  const stop = [join(bin, 'pg_ctl'), 'stop', '-m', 'fast', '-w', '-t', '30', '-D', dataDir]
  const r = spawnSync(isRoot ? 'runuser' : stop[0]!, isRoot ? ['-u', 'postgres', '--', ...stop] : stop.slice(1), { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0 && pidAlive(pid)) {
    log(`pg_ctl stop failed for pid ${pid} (${r.stderr.trim()}); sending SIGKILL`)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}


/**
 * initdb of a throwaway cluster into `data` (fsync off, small), trusting local sockets and then
 * `hba` (pg_hba.conf lines, first match wins).
 */
export function initCluster(bin: string, data: string, hba: string[]): void {
  asPostgres([join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], 'initdb')
  writeFileSync(join(data, 'pg_hba.conf'), ['local all all trust', ...hba, ''].join('\n'))
  appendFileSync(join(data, 'postgresql.conf'), [
    '',
    '# fdrecycle tests: a throwaway cluster',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'shared_buffers = 16MB',
    'max_connections = 60',
    "password_encryption = 'scram-sha-256'",
    'log_min_messages = warning',
    '',
  ].join('\n'))
}

/** A port free on 127.0.0.1 and ::1 at this moment (the server binds it right after). */
export async function freePort(ipv6: boolean): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await listenClose(0, '127.0.0.1')
    if (!ipv6) return port
    try {
      await listenClose(port, '::1')
      return port
    } catch {}
  }
  throw new Error('no port free on both 127.0.0.1 and ::1')
}

function listenClose(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(port, host, () => {
      const p = (server.address() as net.AddressInfo).port
      server.close(() => resolve(p))
    })
  })
}

/** Whether ::1 can be bound here (containers may list it yet refuse it, or lack it). */
export async function hasIpv6Loopback(): Promise<boolean> {
  try {
    await listenClose(0, '::1')
    return true
  } catch {
    return false
  }
}

export function makeCertificate(dir: string, extraSans: string[] = []): { cert: string; key: string } {
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  // The SANs match what tests dial: `localhost`, 127.0.0.1 and ::1 (pg sets no SNI for IPs and
  // Node then checks the IP against the certificate's IP SANs).
  run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=localhost', '-addext', `subjectAltName=${['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', ...extraSans].join(',')}`,
    '-keyout', key, '-out', cert,
  ], 'openssl req (self-signed certificate)')
  return { cert, key }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  ensureDebianPackages(['postgresql', 'openssl'])
  const { bin, version } = findBinDir()
  const dir = runDir(PREFIX, (stale) => {
    for (const data of ['data-plain', 'data-tls']) stopServer(bin, join(stale, data))
  }, log)
  // As root the servers run as `postgres` and own the dir; otherwise as the current user.
  const { uid, gid } = isRoot ? postgresIds() : { uid: -1, gid: -1 }
  const dataDirs: string[] = []
  let stopped = false
  const teardown = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    for (const data of dataDirs) stopServer(bin, data)
    rmSync(dir, { recursive: true, force: true })
  }
  // If the process exits without running teardown (a crash, a forced exit), stop them still.
  const onExit = (): void => void teardown()
  process.once('exit', onExit)

  try {
    const socketDir = join(dir, 'sock')
    const tlsDir = join(dir, 'tls')
    mkdirSync(socketDir)
    mkdirSync(tlsDir)
    const { cert, key } = makeCertificate(tlsDir)
    if (isRoot) chownTree(dir, uid, gid)
    chmodSync(key, 0o600) // postgres refuses a key readable by others

    const template = join(dir, 'data-plain')
    const scram = { user: 'fdrecycle_scram', password: `pw-${Math.random().toString(36).slice(2)}` }
    // First match wins: the SCRAM role over TCP, everyone else trusted (loopback only).
    initCluster(bin, template, [
      `host all ${scram.user} 127.0.0.1/32 scram-sha-256`,
      `host all ${scram.user} ::1/128 scram-sha-256`,
      'host all all 127.0.0.1/32 trust',
      'host all all ::1/128 trust',
    ])
    // The second cluster is a copy (cp -a keeps the owner and the 0700 mode postgres demands).
    const tlsData = join(dir, 'data-tls')
    run('cp', ['-a', template, tlsData], 'cp -a data dir')
    appendFileSync(join(tlsData, 'postgresql.conf'), `ssl = on\nssl_cert_file = '${cert}'\nssl_key_file = '${key}'\n`)

    const ipv6 = await hasIpv6Loopback()
    const listen = ipv6 ? '127.0.0.1,::1' : '127.0.0.1'
    const start = async (name: 'plain' | 'tls', data: string): Promise<PgTestServer> => {
      dataDirs.push(data)
      let lastError: unknown
      for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort(ipv6)
        const logFile = join(dir, `${name}.log`)
        try {
          asPostgres([
            join(bin, 'pg_ctl'), 'start', '-w', '-t', '60', '-D', data, '-l', logFile,
            '-o', `-p ${port} -k ${socketDir} -c listen_addresses=${listen}`,
          ], `pg_ctl start (${name})`)
        } catch (err) {
          // A port taken between the probe and the bind: try another one.
          lastError = new Error(`${(err as Error).message}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`)
          continue
        }
        const pid = postmasterPid(data)
        if (pid === null) throw new Error(`no postmaster.pid in ${data} after pg_ctl start`)
        return { name, port, socketDir, ipv6, pid }
      }
      throw lastError
    }
    const servers = { plain: await start('plain', template), tls: await start('tls', tlsData) }

    for (const server of Object.values(servers)) {
      const client = new pg.Client({ host: socketDir, port: server.port, user: 'postgres', database: 'postgres' })
      await client.connect()
      try {
        await client.query(`CREATE ROLE ${scram.user} LOGIN PASSWORD '${scram.password}'`)
      } finally {
        await client.end()
      }
    }

    const info: PgTestServers = {
      ...servers,
      user: 'postgres',
      database: 'postgres',
      scram,
      ca: readFileSync(cert, 'utf8'),
      version,
    }
    project.provide('pg', info)
    log(`PostgreSQL ${version}: plain on ${servers.plain.port}, tls on ${servers.tls.port}${ipv6 ? ' (127.0.0.1 and ::1)' : ' (127.0.0.1 only: no IPv6 loopback)'}, ready in ${Date.now() - started} ms`)
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
