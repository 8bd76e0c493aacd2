import { execFileSync } from 'node:child_process'
import type net from 'node:net'
import type { SocketRecycler } from '@fdrecycle/core'
import type pg from 'pg'
import { inject } from 'vitest'
import type { PgTestServer, PgTestServers } from '../../../test/setup/postgres.js'

export { fdCount, openSockets, socketsSince, fdOf, socketInode } from '../../../test/helpers/system.js'

/** The servers that test/setup/postgres.ts started for this run. */
export function servers(): PgTestServers {
  return inject('pg')
}

// Run-mode facts shared by the three adapters' suites.
export { expectRecycled, passthroughStats, recyclingSupported } from '../../../test/helpers/run-mode.js'

/** Config for the superuser (trust) over TCP to one server. */
export function tcpConfig(server: PgTestServer, host = '127.0.0.1'): pg.ClientConfig {
  const { user, database } = servers()
  return { host, port: server.port, user, database }
}

/** The TCP socket under a pg client (under TLS too: the TLSSocket's own net.Socket). */
export function tcpSocketOf(client: pg.Client | pg.PoolClient): net.Socket {
  const stream = (client as unknown as { connection: { stream: net.Socket & { _parent?: net.Socket; ssl?: unknown } } }).connection.stream
  // tls.connect({ socket }) keeps the wrapped socket as `_parent`.
  return stream._parent ?? stream
}

/** "localPort->remotePort" of a connected client: its 4-tuple on loopback. */
export function tupleOf(client: pg.Client | pg.PoolClient): string {
  const socket = tcpSocketOf(client)
  return `${socket.localPort}->${socket.remotePort}`
}

/** TIME_WAIT entries held by the client side towards a server port, as "localPort->remotePort". */
export function clientTimeWaits(serverPort: number): Set<string> {
  const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( dport = :${serverPort} )`], { encoding: 'utf8' })
  const tuples = new Set<string>()
  for (const line of out.split('\n')) {
    const m = /:(\d+)\s+\S*:(\d+)\s*$/.exec(line.trim())
    if (m) tuples.add(`${m[1]}->${m[2]}`)
  }
  return tuples
}

/** TIME_WAIT entries held by the server side of a port, as "clientPort->serverPort". */
export function serverTimeWaits(serverPort: number): Set<string> {
  const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( sport = :${serverPort} )`], { encoding: 'utf8' })
  const tuples = new Set<string>()
  for (const line of out.split('\n')) {
    const m = /:(\d+)\s+\S*:(\d+)\s*$/.exec(line.trim())
    if (m) tuples.add(`${m[2]}->${m[1]}`)
  }
  return tuples
}

/** How many of `tuples` are in the client's TIME_WAIT now (attributes TIME_WAIT to one workload). */
export function countClientTimeWaits(tuples: Iterable<string>, serverPorts: number[]): number {
  const now = new Set<string>()
  for (const port of serverPorts) for (const t of clientTimeWaits(port)) now.add(t)
  let n = 0
  for (const t of tuples) if (now.has(t)) n++
  return n
}

/** A bounded poll where no event exists (ss, stats, pg_stat_activity). */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Waits for the release protocol to finish (nothing in use, nothing draining) and for the fd
 * pool's quarantine: a released fd is lent again only after the next poll phase of the event loop
 * (`stats().cooling`, packages/core/src/fd-pool.ts).
 */
export async function released(recycler: SocketRecycler, timeoutMs = 10_000): Promise<void> {
  await until(() => {
    const s = recycler.stats() as ReturnType<SocketRecycler['stats']> & { cooling?: number }
    return s.active === 0 && s.draining === 0 && (s.cooling ?? 0) === 0
  }, `the recycler to settle (${JSON.stringify(recycler.stats())})`, timeoutMs)
}

/** Waits until a backend runs `query` (pg_stat_activity, through a separate plain client). */
export async function waitForActive(admin: pg.Client, pid: number, queryPrefix: string): Promise<void> {
  await until(async () => {
    const r = await admin.query('SELECT state, query FROM pg_stat_activity WHERE pid = $1', [pid])
    const row = r.rows[0] as { state: string; query: string } | undefined
    return row?.state === 'active' && row.query.startsWith(queryPrefix)
  }, `backend ${pid} to run ${queryPrefix}`)
}

/** The error fields that an app sees and may branch on. */
export function errorShape(err: unknown): Record<string, unknown> {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; severity?: string; errors?: unknown[] }
  return {
    name: e?.name,
    constructor: e?.constructor?.name,
    message: e?.message,
    code: e?.code,
    errno: e?.errno,
    syscall: e?.syscall,
    address: e?.address,
    port: e?.port,
    severity: e?.severity,
    errors: Array.isArray(e?.errors) ? e.errors.map(errorShape) : undefined,
  }
}

/** The SASL exchange as pg saw it: mechanisms offered, the one pg chose, the server's final message. */
export function saslTrace(client: pg.Client): { offered: string[]; chosen: string; final: boolean } {
  const trace = { offered: [] as string[], chosen: '', final: false }
  const con = (client as unknown as { connection: pg.Connection & Record<string, (...args: unknown[]) => unknown> }).connection
  con.on('authenticationSASL', (msg: { mechanisms: string[] }) => {
    trace.offered = msg.mechanisms
  })
  con.on('authenticationSASLFinal', () => {
    trace.final = true
  })
  const send = con.sendSASLInitialResponseMessage!
  con.sendSASLInitialResponseMessage = (mechanism: unknown, response: unknown) => {
    trace.chosen = mechanism as string
    return send.call(con, mechanism, response)
  }
  return trace
}

/** pg's backend pid of a connected client (set from BackendKeyData; @types/pg does not declare it). */
export function pidOf(client: pg.Client): number {
  const pid = (client as unknown as { processID: number | null }).processID
  if (typeof pid !== 'number') throw new Error('client has no backend pid (not connected?)')
  return pid
}

/**
 * pg's cancel path: `canceller.cancel(client, query)` opens a new connection through the
 * canceller's `stream` factory and sends a CancelRequest for `client`'s backend.
 */
export function cancelVia(canceller: pg.Client, client: pg.Client, query: unknown): void {
  ;(canceller as unknown as { cancel(client: pg.Client, query: unknown): void }).cancel(client, query)
}
