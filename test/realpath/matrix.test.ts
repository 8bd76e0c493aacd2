// Issue #15: every adapter on a real path, TLS included. PostgreSQL, Redis, nginx and MariaDB from
// Debian's packages run inside the server namespace of a fault lab (two namespaces joined by the TUN relay,
// 2 ms each way), the real clients inside the client namespace (matrix-client.mjs), plain and
// through the adapters. Per cell: errors, fds reused, client and server TIME_WAIT, who sent the
// first FIN of each connection and the RSTs on the wire each way (the relay's log), checked against
// the server namespace's `Tcp: OutRsts`. The table is printed and written as markdown
// (FDRECYCLE_MATRIX_MD, or a file in the temp dir); the root README's "On a real path" holds a run.
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNginx } from '../../scripts/nginx.mjs'
import { ensureDebianPackages } from '../../scripts/system-deps.mjs'
import { AgentProcess } from '../faults/agent-process.js'
import { tcpCounters, tcpSockets } from '../faults/agent-protocol.mjs'
import { cleanupFaultLabs, FaultLab, faultLabSupport, SERVER_ADDRESS } from '../faults/fault-lab.js'
import type { RelayEvent } from '../faults/tun-relay.js'
import { ensureBuilt } from '../helpers/built.js'
import { nodeArgs, startNode, stopNode, type RedisNode } from '../helpers/redis.js'
import { initMariaDb, mariaDbPid, startMariaDb, stopMariaDb } from '../setup/mariadb.js'
import { asPostgres, chownTree, findBinDir, initCluster, isRoot, makeCertificate, postgresIds, stopServer } from '../setup/postgres.js'
import { runDir } from '../setup/run-dirs.js'

const here = import.meta.dirname ?? new URL('.', import.meta.url).pathname
const support = faultLabSupport()
const required = process.env.FDRECYCLE_REQUIRE_NAMESPACES === '1'
if (!support.ok) console.warn(`[realpath matrix] ${required ? 'FAILING (FDRECYCLE_REQUIRE_NAMESPACES=1)' : 'skipped'}: ${support.reason}`)

/** One-way delay of the relay, each direction. */
const DELAY_MS = 2
/** Connections per cell, and how many at a time. */
const COUNT = Number(process.env.FDRECYCLE_MATRIX_COUNT ?? 60)
const CONCURRENCY = 4

/** Ports inside the server namespace: nothing else listens there. */
const PORTS = { pg: 5432, redis: 6379, rediss: 6380, http: 8080, https: 8443, mysql: 3306 } as const

interface Row {
  client: 'pg' | 'postgres.js' | 'ioredis' | 'node:http' | 'node:https' | 'undici' | 'mysql2'
  tls: boolean
  port: number
  /** how the server comes to close first */
  close: string
  /**
   * Measured on this path, explained in the README's "On a real path": `all` where the recycled
   * client's FIN still goes first, save when the server's crosses it (pg's TLS: the FIN comes from
   * libuv, below JavaScript).
   */
  recycledFinFirst: 'none' | 'all'
  /** whether the server resets connections (data reached it after it closed: TLS close_notify) */
  serverResets: boolean
  /**
   * whether the client may reset connections, plain and recycled alike: it lets go of a socket
   * with the server's TLS close_notify unread or still arriving, and a close then sends an RST
   * (tcp_close); the recycler follows that rule (destroy() aborts)
   */
  clientResets?: boolean
}

/** The matrix's rows: a new client is a row here and an entry in matrix-client.mjs's CLIENTS. */
const ALL_ROWS: Row[] = [
  { client: 'pg', tls: false, port: PORTS.pg, close: 'Terminate', recycledFinFirst: 'none', serverResets: false },
  // pg upgrades a connected socket: tls.connect({ socket }) then wraps its TCP handle in C++, and
  // TLS's end() is libuv's shutdown (our FIN at once). PostgreSQL exits with the client's
  // close_notify unread: its kernel answers with an RST instead of a FIN.
  { client: 'pg', tls: true, port: PORTS.pg, close: 'Terminate', recycledFinFirst: 'all', serverResets: true },
  { client: 'postgres.js', tls: false, port: PORTS.pg, close: 'Terminate', recycledFinFirst: 'none', serverResets: false },
  // postgres.js likewise calls tls.connect({ socket }) on the connected socket: as for pg, the FIN
  // comes from libuv and PostgreSQL resets.
  { client: 'postgres.js', tls: true, port: PORTS.pg, close: 'Terminate', recycledFinFirst: 'all', serverResets: true },
  { client: 'ioredis', tls: false, port: PORTS.redis, close: 'QUIT', recycledFinFirst: 'none', serverResets: false },
  // Plain ioredis ends first over TLS (close_notify + FIN); the recycled connector sends QUIT and
  // no close_notify after it (one would cross Redis's close and draw RSTs).
  { client: 'ioredis', tls: true, port: PORTS.rediss, close: 'QUIT', recycledFinFirst: 'none', serverResets: false },
  { client: 'node:http', tls: false, port: PORTS.http, close: 'Connection: close', recycledFinFirst: 'none', serverResets: false },
  // nginx likewise: the client's close_notify after nginx closed draws an RST. And as with undici
  // below, the client may let go of the socket with nginx's close_notify unread or still arriving:
  // plain sent 1, 2 and 5 RSTs in three runs of 60, recycled 0, 0, 0 (and once 1, in CI).
  { client: 'node:https', tls: true, port: PORTS.https, close: 'Connection: close', recycledFinFirst: 'none', serverResets: true, clientResets: true },
  { client: 'undici', tls: false, port: PORTS.http, close: 'Connection: close', recycledFinFirst: 'none', serverResets: false },
  // undici destroys the TLS socket once the response is complete, sending no close_notify; where
  // nginx's close_notify is still unread or arrives after that, the client's kernel (plain) or the
  // recycler (destroy() aborts, as a plain close does) answers with an RST, a few per run.
  { client: 'undici', tls: true, port: PORTS.https, close: 'Connection: close', recycledFinFirst: 'none', serverResets: false, clientResets: true },
  { client: 'mysql2', tls: false, port: PORTS.mysql, close: 'COM_QUIT', recycledFinFirst: 'none', serverResets: false },
  // As with nginx: MariaDB closes first on COM_QUIT, and what the client's TLS socket sends after
  // that (close_notify, then its FIN) reaches a closed socket and draws RSTs, plain and recycled.
  { client: 'mysql2', tls: true, port: PORTS.mysql, close: 'COM_QUIT', recycledFinFirst: 'none', serverResets: true },
]
/** FDRECYCLE_MATRIX_ONLY=pg,undici runs those clients only (for a closer look at one). */
const only = process.env.FDRECYCLE_MATRIX_ONLY?.split(',')
const ROWS = only ? ALL_ROWS.filter((r) => only.includes(r.client)) : ALL_ROWS
/** FDRECYCLE_MATRIX_TRACE=1: the relay logs every segment, and each cell prints its first connections. */
const TRACE = process.env.FDRECYCLE_MATRIX_TRACE === '1'

interface RunResult {
  count: number
  ok: number
  errors: string[]
  ms: number
  stats: Record<string, number | string> | null
}

interface Cell {
  row: Row
  recycled: boolean
  run: RunResult
  /** new TIME_WAIT entries of this cell's connections, in each namespace */
  clientTimeWait: number
  serverTimeWait: number
  /** connections whose first FIN came from the client (the relay's log; ports of the cell's connections) */
  clientFinFirst: number
  connections: number
  /** RST segments on the wire, each way (the relay's log) */
  rstToServer: number
  rstToClient: number
  /** the server namespace's Tcp: OutRsts (RSTs its kernel sent) and EstabResets over the cell */
  serverOutRsts: number
  serverEstabResets: number
  settleMs: number
}

type TcpList = { state: string; localPort: number; remotePort: number }[]

function sockets(pid: number): TcpList {
  return (tcpSockets(pid) as { list: TcpList }).list
}

/** TIME_WAIT entries towards (client side) or from (server side) `port`, as "local-remote" keys. */
function timeWaits(pid: number, port: number, side: 'client' | 'server'): Set<string> {
  return new Set(
    sockets(pid)
      .filter((s) => s.state === 'TIME_WAIT' && (side === 'client' ? s.remotePort : s.localPort) === port)
      .map((s) => `${s.localPort}-${s.remotePort}`),
  )
}

/** Connections to `port` still closing (neither LISTEN nor TIME_WAIT) in either namespace. */
function closing(clientPid: number, serverPid: number, port: number): TcpList {
  return [
    ...sockets(clientPid).filter((s) => s.remotePort === port && s.state !== 'TIME_WAIT'),
    ...sockets(serverPid).filter((s) => s.localPort === port && s.state !== 'TIME_WAIT' && s.state !== 'LISTEN'),
  ]
}

function cellsMarkdown(cells: Cell[], meta: string): string {
  const pair = (row: Row, f: (c: Cell) => string | number): string => {
    const [plain, recycled] = [false, true].map((r) => cells.find((c) => c.row === row && c.recycled === r))
    return `${plain ? f(plain) : '–'} / ${recycled ? f(recycled) : '–'}`
  }
  const rows = ROWS.filter((row) => cells.some((c) => c.row === row))
  const lines = [
    meta,
    '',
    '| client | TLS | server closes on | errors | fds opened | reused | client TIME_WAIT | server TIME_WAIT | client FIN first | RSTs to server | RSTs from server |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) =>
      [
        row.client,
        row.tls ? 'yes' : 'no',
        row.close,
        pair(row, (c) => c.run.errors.length),
        pair(row, (c) => (c.run.stats ? Number(c.run.stats.fdsCreated) : c.connections)),
        pair(row, (c) => (c.run.stats ? Number(c.run.stats.reusedConnections) : 0)),
        pair(row, (c) => c.clientTimeWait),
        pair(row, (c) => c.serverTimeWait),
        pair(row, (c) => c.clientFinFirst),
        pair(row, (c) => c.rstToServer),
        pair(row, (c) => c.rstToClient),
      ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'),
    ),
    '',
    'Each cell: plain / recycled. RSTs counted on the wire (the relay), each direction.',
  ]
  return lines.join('\n')
}

/** Everything the matrix runs on: the lab, the servers in its server namespace, the client agent. */
interface Bench {
  lab: FaultLab
  client: AgentProcess
  serverPid: number
  clientPid: number
  ca: string
  /** MariaDB's test user and database */
  mysql: { user: string; password: string; database: string }
  stop: () => Promise<void>
}

async function startBench(): Promise<Bench> {
  ensureDebianPackages(['postgresql', 'redis-server', 'redis-tools', 'nginx', 'mariadb-server', 'mariadb-client', 'openssl'])
  for (const pkg of ['core', 'pg-adapter', 'postgresjs-adapter', 'redis-adapter', 'http-adapter', 'mysql-adapter']) ensureBuilt(pkg)
  const { bin } = findBinDir()
  const cleanups: (() => void | Promise<void>)[] = []
  const syncCleanups: (() => void)[] = []
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    // servers first (by pid), then the agents, relay and namespaces
    for (const f of cleanups.reverse()) await Promise.resolve().then(f).catch((e: Error) => console.error(`[realpath matrix] cleanup: ${e.message}`))
    process.removeListener('exit', onExit)
  }
  const onExit = (): void => {
    if (stopped) return
    for (const f of syncCleanups.reverse()) {
      try {
        f()
      } catch {}
    }
  }
  process.once('exit', onExit)
  try {
    // A run killed before its teardown left servers behind: stopped by the pids in its dir.
    const dir = runDir('fdrecycle-realpath-', (stale) => {
      stopServer(bin, join(stale, 'pg'))
      stopNode(nodeArgs(PORTS.redis, join(stale, 'redis')), 'SIGKILL')
      const mariadb = mariaDbPid(join(stale, 'mariadb'))
      if (mariadb !== null) {
        try {
          process.kill(mariadb, 'SIGKILL')
        } catch {}
      }
    }, (message) => console.warn(`[realpath matrix] ${message}`))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))

    const lab = await FaultLab.start({ relay: { delayAbMs: DELAY_MS, delayBaMs: DELAY_MS, trace: TRACE }, debug: false })
    cleanups.push(() => lab[Symbol.asyncDispose]())
    const exec = ['ip', 'netns', 'exec', lab.netnsB]
    const { agent: client, ready } = await AgentProcess.start('matrix client', lab.netnsA, join(here, 'matrix-client.mjs'), [])
    cleanups.push(() => client.stop())
    syncCleanups.push(() => client.pid !== undefined && process.kill(client.pid, 'SIGKILL'))

    // One certificate for every TLS server: the clients check the server's IP against its SANs.
    const tlsDir = join(dir, 'tls')
    mkdirSync(tlsDir)
    const { cert, key } = makeCertificate(tlsDir, [`IP:${SERVER_ADDRESS}`])
    const ca = readFileSync(cert, 'utf8')

    // PostgreSQL: ssl on, so one server takes both plain and TLS clients.
    const data = join(dir, 'pg')
    if (isRoot) {
      const { uid, gid } = postgresIds()
      chownTree(dir, uid, gid)
    }
    chmodSync(key, 0o600)
    initCluster(bin, data, ['host all all 10.213.1.0/24 trust'])
    appendFileSync(join(data, 'postgresql.conf'), `ssl = on\nssl_cert_file = '${cert}'\nssl_key_file = '${key}'\n`)
    cleanups.push(() => stopServer(bin, data))
    syncCleanups.push(() => stopServer(bin, data))
    asPostgres([join(bin, 'pg_ctl'), 'start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'pg.log'),
      '-o', `-p ${PORTS.pg} -k ${dir} -c listen_addresses=${SERVER_ADDRESS}`], 'pg_ctl start (server namespace)', exec)

    // Redis: plain and TLS ports on one server. Protected mode (on without a password) refuses
    // every client from outside loopback; the namespace is reachable from the lab's client only.
    const redisDir = join(dir, 'redis')
    mkdirSync(redisDir)
    const redis: RedisNode = nodeArgs(PORTS.redis, redisDir, [
      '--protected-mode', 'no',
      '--tls-port', String(PORTS.rediss), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no',
    ], SERVER_ADDRESS, exec)
    cleanups.push(() => stopNode(redis, 'SIGKILL'))
    syncCleanups.push(() => stopNode(redis, 'SIGKILL'))
    startNode(redis)

    // nginx: one response per connection, then `Connection: close` (nginx closes first).
    const nginx = await startNginx({
      servers: { http: { keepaliveRequests: 1 }, https: { keepaliveRequests: 1, tls: { cert, key } } },
      host: SERVER_ADDRESS,
      exec,
      ports: { http: PORTS.http, https: PORTS.https },
      probe: (host: string, port: number) => client.call<boolean>('probe', { host, port }),
    })
    cleanups.push(() => nginx.stop())
    syncCleanups.push(() => process.kill(nginx.pid, 'SIGKILL'))

    // MariaDB: one server for plain and TLS clients (require_secure_transport off). It runs as
    // `mysql` in a dir of its own, with its own copy of the key; the run dir (PostgreSQL's) lets it pass.
    const mariaDir = join(dir, 'mariadb')
    mkdirSync(mariaDir)
    copyFileSync(cert, join(mariaDir, 'server.crt'))
    copyFileSync(key, join(mariaDir, 'server.key'))
    chmodSync(dir, 0o711)
    initMariaDb(mariaDir)
    let mariaPid: number | null = null
    cleanups.push(() => stopMariaDb(mariaPid ?? mariaDbPid(mariaDir)))
    syncCleanups.push(() => {
      const pid = mariaPid ?? mariaDbPid(mariaDir)
      if (pid !== null) process.kill(pid, 'SIGKILL')
    })
    const mariadb = await startMariaDb({
      dir: mariaDir, port: PORTS.mysql, bindAddress: SERVER_ADDRESS, cert: join(mariaDir, 'server.crt'), key: join(mariaDir, 'server.key'), exec,
    })
    mariaPid = mariadb.pid

    return { lab, client, serverPid: lab.server.pid!, clientPid: ready.pid as number, ca, mysql: { user: mariadb.user, password: mariadb.password, database: mariadb.database }, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function runCell(bench: Bench, row: Row, recycled: boolean): Promise<Cell> {
  const { lab, clientPid, serverPid } = bench
  const port = row.port
  const twClient = timeWaits(clientPid, port, 'client')
  const twServer = timeWaits(serverPid, port, 'server')
  const snmp0 = tcpCounters(serverPid) as Record<string, number>
  await lab.relay.flush()
  const ev0 = lab.relay.events.length
  const run = await bench.client.call<RunResult>('run', {
    client: row.client,
    recycled,
    target: { host: SERVER_ADDRESS, port, tls: row.tls, ca: bench.ca, mysql: bench.mysql },
    count: COUNT,
    concurrency: CONCURRENCY,
  }, 150_000)
  // Every connection of the cell closed on both sides (TIME_WAIT aside): a bounded poll, as the
  // kernel has no event for it.
  const settleStart = Date.now()
  for (;;) {
    const left = closing(clientPid, serverPid, port)
    if (left.length === 0) break
    if (Date.now() - settleStart > 20_000) throw new Error(`${row.client}${row.tls ? ' (TLS)' : ''}: connections still closing 20 s after the run: ${JSON.stringify(left.slice(0, 10))}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const settleMs = Date.now() - settleStart
  await lab.relay.flush()
  const snmp1 = tcpCounters(serverPid) as Record<string, number>
  const events = lab.relay.events.slice(ev0).filter((e: RelayEvent) => (e.dir === 'ab' ? e.dport : e.sport) === port)
  if (TRACE) {
    // two connections whose first FIN was the client's if there are any, else the first two
    const clientFirst = events.filter((e) => e.kind === 'fin' && e.dir === 'ab' && !events.some((f) => f.kind === 'fin' && f.dir === 'ba' && f.dport === e.sport && f.t < e.t)).map((e) => e.sport)
    const ports = [...new Set([...clientFirst, ...events.map((e) => (e.dir === 'ab' ? e.sport : e.dport))])].slice(0, 2)
    for (const p of ports) console.log(`${row.client}${row.tls ? ' TLS' : ''} ${recycled ? 'recycled' : 'plain'}\n${await lab.timeline(p)}`)
  }
  const firstFin = new Map<number, 'ab' | 'ba'>()
  for (const e of events) {
    const clientPort = e.dir === 'ab' ? e.sport : e.dport
    if (e.kind === 'fin' && !firstFin.has(clientPort)) firstFin.set(clientPort, e.dir)
  }
  return {
    row,
    recycled,
    run,
    clientTimeWait: [...timeWaits(clientPid, port, 'client')].filter((k) => !twClient.has(k)).length,
    serverTimeWait: [...timeWaits(serverPid, port, 'server')].filter((k) => !twServer.has(k)).length,
    clientFinFirst: [...firstFin.values()].filter((d) => d === 'ab').length,
    connections: new Set(events.filter((e) => e.kind === 'fin' || e.kind === 'rst').map((e) => (e.dir === 'ab' ? e.sport : e.dport))).size,
    rstToServer: events.filter((e) => e.kind === 'rst' && e.dir === 'ab').length,
    rstToClient: events.filter((e) => e.kind === 'rst' && e.dir === 'ba').length,
    serverOutRsts: snmp1.OutRsts! - snmp0.OutRsts!,
    serverEstabResets: snmp1.EstabResets! - snmp0.EstabResets!,
    settleMs,
  }
}

describe.runIf(support.ok)(`every adapter on a real path (${DELAY_MS} ms each way, ${COUNT} connections per cell)`, () => {
  let bench: Bench
  const cells: Cell[] = []

  beforeAll(async () => {
    bench = await startBench()
  }, 180_000)

  afterAll(async () => {
    if (cells.length > 0) {
      const md = cellsMarkdown(cells, `Measured ${new Date().toISOString().slice(0, 10)}: ${DELAY_MS} ms one-way delay (TUN relay between two namespaces), ${COUNT} connections per cell, ${CONCURRENCY} at a time; Node ${process.version}.`)
      const out = process.env.FDRECYCLE_MATRIX_MD ?? join(tmpdir(), 'fdrecycle-realpath-matrix.md')
      writeFileSync(out, `${md}\n`)
      console.log(`${md}\n(written to ${out})`)
      console.log(JSON.stringify(cells.map((c) => ({ client: c.row.client, tls: c.row.tls, recycled: c.recycled, ...c, row: undefined, run: { ...c.run, errors: c.run.errors.slice(0, 5) } }))))
    }
    await bench?.stop()
    await cleanupFaultLabs()
  }, 120_000)

  for (const row of ROWS) {
    it(`${row.client}${row.tls ? ' with TLS' : ''}: plain, then recycled`, async () => {
      const plain = await runCell(bench, row, false)
      cells.push(plain)
      const recycled = await runCell(bench, row, true)
      cells.push(recycled)
      for (const cell of [plain, recycled]) {
        expect(cell.run.errors).toEqual([])
        expect(cell.run.ok).toBe(COUNT)
        // one connection per session, each seen closing on the path (a FIN or an RST), told apart
        // by client port: the kernel may hand a port out twice in a cell (the first connection's
        // TIME_WAIT is the server's, in the other namespace), and two connections then count as
        // one (59 of 60 once in CI, with the server's TIME_WAIT count 59 as well)
        expect(cell.connections).toBeGreaterThanOrEqual(COUNT - 2)
        expect(cell.connections).toBeLessThanOrEqual(COUNT)
      }
      // The server closes first (row.close): the recycled client leaves no TIME_WAIT and reuses fds.
      expect(recycled.clientTimeWait).toBe(0)
      expect(recycled.run.stats).toMatchObject({ connections: COUNT, drainTimeouts: 0 })
      if (!row.clientResets) expect(recycled.run.stats!.resetsSent).toBe(0)
      expect(Number(recycled.run.stats!.reusedConnections)).toBeGreaterThan(0)
      expect(Number(recycled.run.stats!.fdsCreated)).toBeLessThan(COUNT)
      // The server never sees an RST from the recycled client (no fd dissolved before the peer's
      // FIN), except where a plain client resets too (row.clientResets): then the RSTs on the wire
      // belong to the connections the recycler reset (each reset, and at most one answer to a
      // segment of the server's that crossed it), none to a dissolve out of turn.
      if (!row.clientResets) expect(recycled.rstToServer).toBe(0)
      else {
        const resets = Number(recycled.run.stats!.resetsSent)
        expect(recycled.rstToServer).toBeGreaterThanOrEqual(resets)
        expect(recycled.rstToServer).toBeLessThanOrEqual(2 * resets)
      }
      // 'none': the recycler withheld every FIN until the server's. 'all': the FIN is libuv's, sent
      // with the goodbye; the server's can still cross it when the client is slow to end (53 of 60
      // with other test files sharing the CPUs).
      if (row.recycledFinFirst === 'none') expect(recycled.clientFinFirst).toBe(0)
      else expect(recycled.clientFinFirst).toBeGreaterThan(recycled.connections / 2)
      // Plaintext: no RST either way. TLS: the server's resets are its own (see the row's comment).
      if (!row.serverResets) expect([plain.rstToClient, recycled.rstToClient]).toEqual([0, 0])
      else expect(recycled.rstToClient).toBeGreaterThan(0)
      // the server namespace's own count of the RSTs it sent agrees with the wire
      for (const cell of [plain, recycled]) expect(cell.serverOutRsts).toBe(cell.rstToClient)
    }, 200_000)
  }
})

describe.runIf(!support.ok && required)('every adapter on a real path', () => {
  it('needs network namespaces (FDRECYCLE_REQUIRE_NAMESPACES=1)', () => {
    throw new Error(`network namespaces are required here but unavailable: ${support.reason}`)
  })
})
