import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis'
import * as ioredis5 from 'ioredis5'
import { socketsSince } from '../../../test/helpers/system.js'

// Run-mode facts shared by the three adapters' suites.
export { expectRecycled, passthroughStats, recyclingSupported } from '../../../test/helpers/run-mode.js'

export type RedisClass = typeof Redis6
export type ClusterClass = typeof Cluster6
export type RedisClient = InstanceType<RedisClass>

// ioredis 5.0 exports the client class as the default only; the named `Redis` came later in 5.x.
const Redis5 = (ioredis5 as { Redis?: unknown }).Redis ?? ioredis5.default
const Cluster5 = ioredis5.Cluster

/** Both supported majors, for describe.each: ioredis 6 (`ioredis`) and 5 (the `ioredis5` alias). */
export const majors: { name: string; Redis: RedisClass; Cluster: ClusterClass }[] = [
  { name: 'ioredis 6', Redis: Redis6, Cluster: Cluster6 },
  // The same runtime contract; ioredis 5's types differ in name only, hence the casts.
  { name: 'ioredis 5', Redis: Redis5 as unknown as RedisClass, Cluster: Cluster5 as unknown as ClusterClass },
]

/**
 * TCP connections in TIME_WAIT on this host towards any of the ports, as 4-tuples. Compare two
 * snapshots (after minus before): entries left by earlier runs are in both.
 */
export function timeWaitTuples(ports: number[]): Set<string> {
  const filter = ports.map((p) => `dport = :${p}`).join(' or ')
  const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( ${filter} )`], { encoding: 'utf8' })
  return new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4)
      .map((f) => `${f[2]}>${f[3]}`),
  )
}

export function newEntries(before: Set<string>, after: Set<string>): string[] {
  return [...after].filter((t) => !before.has(t))
}

/** Resolves at a client's 'end' (status end): the moment the app sees the connection gone. */
export async function ended(client: { status: string }): Promise<void> {
  if (client.status === 'end') return
  // Not events.once(): it rejects on an 'error' event, which a failing client emits on its way to 'end'.
  await new Promise<void>((resolve) => (client as unknown as NodeJS.EventEmitter).once('end', () => resolve()))
}

/** The socket ioredis writes to (a TLSSocket with `tls`). */
export function streamOf(client: RedisClient): net.Socket {
  return (client as unknown as { stream: net.Socket }).stream
}

/**
 * What an app sees of a client's life: its events in order, errors by code and message.
 * Compared between runs with and without the connector.
 */
export function trace(client: NodeJS.EventEmitter): string[] {
  const log: string[] = []
  for (const event of ['connect', 'ready', 'close', 'end']) client.on(event, () => log.push(event))
  client.on('reconnecting', (delay: number) => log.push(`reconnecting ${delay}`))
  client.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${describeError(err)}`))
  return log
}

export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; errors?: unknown[] }
  const parts = [e.name, e.code, e.errno, e.syscall, e.address, e.port, e.message]
  if (Array.isArray(e.errors)) parts.push(`[${e.errors.map(describeError).join(' | ')}]`)
  return parts.filter((p) => p !== undefined && p !== '').join(' ')
}

/** A port on 127.0.0.1 with nothing listening (bound once, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

/** Lets the release protocol finish (it settles on the ticks after 'close'). */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
}

/**
 * Waits until the recycler has no socket in use, draining or cooling: the release protocol runs after
 * 'close', and through a TLS layer a few ticks later. A bounded poll: no event tells it.
 */
export async function released(recycler: { stats(): { active: number; draining: number; cooling?: number } }, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  await settle()
  // cooling: a released fd is lent again one poll phase later; a connect before then gets a new fd
  while (recycler.stats().active + recycler.stats().draining + (recycler.stats().cooling ?? 0) > 0) {
    if (Date.now() > deadline) throw new Error(`recycler still has sockets in use, draining or cooling after ${timeoutMs} ms: ${JSON.stringify(recycler.stats())}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/**
 * Waits until no socket opened since `baseline` (openSockets()) is open and returns how many still
 * are: sockets that ioredis closes on its own (a plain subscriber, a plain client after 'end')
 * close a few ticks later. A bounded poll: no event tells it.
 */
export async function fdsSettle(baseline: ReadonlySet<string>, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (socketsSince(baseline) !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  return socketsSince(baseline)
}

/**
 * recycledConnector options for tests that check who closes first: disconnect()'s QUIT gets as long
 * as the tests' recycler's finDelayMs (5000), so that a loaded machine cannot decide it.
 */
export const PATIENT = { quitTimeoutMs: 5000 } as const
