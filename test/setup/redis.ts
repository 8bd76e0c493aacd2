// Vitest globalSetup of the `redis` project: throwaway redis-server processes from Debian's
// packages, on loopback, on free ports, in a temp dir; stopped by pid and removed afterwards (also
// when tests fail, and at process exit if teardown never ran). Tests never touch a server the
// machine runs.
//   standalone: TCP and a Unix socket
//   tls:        --tls-port only, with a CA and a server certificate made here with openssl
//   cluster:    6 nodes, 3 masters and 3 replicas (redis-cli --cluster create), fast failover
import { runDir } from './run-dirs.js'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { ensureDebianPackages } from '../../scripts/system-deps.mjs'
import { REDIS_HOST, clusterHealthy, nodeArgs, pidOf, startNode, stopNode, waitFor, type RedisNode } from '../helpers/redis.js'

export interface RedisTestServers {
  host: string
  standalone: RedisNode & { unixSocket: string }
  tls: RedisNode & { ca: string }
  /** 6 nodes; `redis-cli --cluster create` made the first three masters */
  cluster: RedisNode[]
  /** cluster-node-timeout: a killed master's replica takes over a few of these later */
  clusterNodeTimeoutMs: number
  /** redis-server's version, e.g. 7.0.15 */
  version: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    redis: RedisTestServers
  }
}

const PREFIX = 'fdrecycle-redis-'
const CLUSTER_NODE_TIMEOUT_MS = 2000

function log(message: string): void {
  process.stderr.write(`[redis setup] ${message}\n`)
}

function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`)
  }
  return r.stdout
}

/** Every node under a dir made by a run whose process is gone (pidfiles below it). */
function nodesUnder(dir: string): RedisNode[] {
  const found: RedisNode[] = []
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name === 'redis.pid') {
        const port = Number(readFileSync(join(d, 'port'), 'utf8'))
        found.push(nodeArgs(port, d))
      }
    }
  }
  try {
    walk(dir)
  } catch {}
  return found
}


function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, REDIS_HOST, () => server.close(() => resolve(true)))
  })
}

/** A free port below the ephemeral range, whose cluster bus port (+10000) is free and below it too. */
async function freePort(taken: Set<number>): Promise<number> {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
  const top = Math.min(low, 65536) - 10_001
  const bottom = Math.max(10_000, top - 8_000)
  for (let i = 0; i < 200; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom))
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if ((await bindable(port)) && (await bindable(port + 10_000))) {
      taken.add(port)
      taken.add(port + 10_000)
      return port
    }
  }
  throw new Error('no free port pair (P, P+10000) found on 127.0.0.1')
}

function nodeDir(base: string, name: string, port: number): string {
  const dir = join(base, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'port'), String(port))
  return dir
}

/** A CA and a server certificate for 127.0.0.1 and localhost, signed by it (EC keys: fast). */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const ca = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  const csr = join(dir, 'server.csr')
  const ext = join(dir, 'server.ext')
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  run('openssl', ['req', '-x509', ...ec, '-sha256', '-days', '2', '-subj', '/CN=fdrecycle test CA', '-keyout', caKey, '-out', ca], 'openssl req (CA)')
  run('openssl', ['req', ...ec, '-subj', '/CN=localhost', '-keyout', key, '-out', csr], 'openssl req (server)')
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-sha256', '-days', '2', '-extfile', ext, '-out', cert], 'openssl x509 (sign)')
  return { ca, cert, key }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  ensureDebianPackages(['redis-server', 'redis-tools', 'openssl'])
  const version = /v=(\S+)/.exec(run('redis-server', ['--version'], 'redis-server --version'))?.[1] ?? 'unknown'
  const base = runDir(PREFIX, (stale) => {
    for (const node of nodesUnder(stale)) stopNode(node, 'SIGKILL')
  }, log)
  const nodes: RedisNode[] = []
  let stopped = false
  const teardown = (): void => {
    if (stopped) return
    stopped = true
    // SIGKILL: nothing to save (--save ''), and a cluster node may be half-way through a failover.
    for (const node of nodes) stopNode(node, 'SIGKILL')
    rmSync(base, { recursive: true, force: true })
  }
  // If the process exits without running teardown (a crash, a forced exit), stop them still.
  process.once('exit', teardown)

  try {
    const taken = new Set<number>()
    const start = (node: RedisNode, ping: string[] = []): RedisNode => {
      nodes.push(node)
      startNode(node, ping)
      return node
    }

    let port = await freePort(taken)
    let dir = nodeDir(base, 'standalone', port)
    const unixSocket = join(dir, 'redis.sock')
    const standalone = { ...start(nodeArgs(port, dir, ['--unixsocket', unixSocket, '--unixsocketperm', '700'])), unixSocket }

    port = await freePort(taken)
    dir = nodeDir(base, 'tls', port)
    const certs = makeCertificates(dir)
    const tlsNode = nodeArgs(port, dir, [
      '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no',
    ])
    // TLS only: --port 0 turns plain TCP off, the node's port becomes the TLS port.
    tlsNode.args = tlsNode.args.map((a, i, all) => (all[i - 1] === '--port' ? '0' : a)).concat('--tls-port', String(port))
    const tlsServer = { ...start(tlsNode, ['--tls', '--cacert', certs.ca]), ca: readFileSync(certs.ca, 'utf8') }

    const cluster: RedisNode[] = []
    for (let i = 0; i < 6; i++) {
      port = await freePort(taken)
      dir = nodeDir(base, `cluster-${i}`, port)
      cluster.push(nodeArgs(port, dir, [
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS),
      ]))
    }
    for (const node of cluster) start(node)
    run('redis-cli', ['--cluster', 'create', ...cluster.map((n) => `${REDIS_HOST}:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], 'redis-cli --cluster create')
    waitFor(() => clusterHealthy(cluster), 'cluster_state:ok on all 6 nodes', 60_000)

    const info: RedisTestServers = {
      host: REDIS_HOST,
      standalone,
      tls: tlsServer,
      cluster,
      clusterNodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS,
      version,
    }
    project.provide('redis', info)
    log(`redis-server ${version}: standalone on ${standalone.port} (+ ${unixSocket}), tls on ${tlsServer.port}, cluster on ${cluster.map((n) => n.port).join(',')}; ready in ${Date.now() - started} ms`)
    for (const node of nodes) if (pidOf(node) === null) throw new Error(`redis-server on ${node.port} is not running`)
  } catch (err) {
    teardown()
    process.removeListener('exit', teardown)
    throw err
  }

  return async () => {
    teardown()
    process.removeListener('exit', teardown)
  }
}
