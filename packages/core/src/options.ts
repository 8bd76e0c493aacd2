import { InvalidOptionError } from './errors.js'

/** How a SocketRecycler disposes of an fd whose peer never sent EOF. */
export type DrainTimeoutPolicy = 'close' | 'reset'

export interface RecyclerOptions {
  /**
   * `'auto'` recycles where this process can (Linux, koffi loads, AF_UNSPEC works) and hands out
   * plain sockets elsewhere; `'recycle'` throws `ERR_FDRECYCLE_UNSUPPORTED` at construction where
   * it cannot; `'passthrough'` never recycles (plain sockets, same API, same stats).
   * @default 'auto'
   */
  mode?: 'auto' | 'recycle' | 'passthrough'
  /**
   * After the user ends a socket, our FIN is withheld this long waiting for the peer to close
   * first (pg Terminate, Redis QUIT, HTTP `Connection: close`): the side that closes first keeps
   * the TIME_WAIT, so this keeps it off the client. `0` sends the FIN at once.
   * @default 1000
   */
  finDelayMs?: number
  /**
   * How long our FIN is withheld after the user ends a socket. `'adaptive'` learns it per
   * destination (address and port): the first goodbye to a destination waits up to `finDelayMs`;
   * a peer that did not close within it gets our FIN at once from then on (probed again every 256
   * connections or 60 s); a peer that closed first gets a wait bounded by its observed close delay
   * and RTT (4x, plus 100 ms), at most `finDelayMs`. `'fixed'` always waits `finDelayMs`. A socket's
   * own `finDelayMs` wins over both.
   * @default 'adaptive' ('fixed' when finDelayMs is given)
   */
  releasePolicy?: 'adaptive' | 'fixed'
  /**
   * Once our FIN is out and the socket's user is gone, how long to wait for the peer's EOF before
   * `onDrainTimeout` applies.
   * @default 5000
   */
  drainTimeoutMs?: number
  /**
   * For a peer that never closes: `'close'` closes the fd (close(2); not reused); `'reset'`
   * dissolves it now (AF_UNSPEC sends RST) and reuses it.
   * @default 'close'
   */
  onDrainTimeout?: DrainTimeoutPolicy
  /**
   * Idle (unconnected) fds kept per address family; more are closed on release.
   * @default 256
   */
  maxIdle?: number
  /**
   * Idle handles kept ready per address family (created at start and after eviction).
   * @default 0
   */
  minIdle?: number
  /**
   * An idle fd unused this long is closed. `0` keeps idle fds until `close()`.
   * @default 30000
   */
  idleTimeoutMs?: number
  /**
   * An fd serves at most this many connections, then is closed. `0`: no limit.
   * @default 0
   */
  maxReuses?: number
  /**
   * Cap on fds owned per address family (in use, draining and idle). A connect beyond it waits
   * for one to come back, up to `acquireTimeoutMillis`. `0`: no cap.
   * @default 0
   */
  maxSockets?: number
  /**
   * How long a connect waits for an fd when `maxSockets` is reached, before failing with
   * `ERR_FDRECYCLE_ACQUIRE_TIMEOUT`. Always set: generic-pool would otherwise wait forever.
   * @default 10000
   */
  acquireTimeoutMillis?: number
  /**
   * Socket options a tenant changed are reset before the next one. `'tracked'` resets those set
   * through the socket's methods and constructor options (setNoDelay, setKeepAlive,
   * setTypeOfService, setLinger); `'verify'` also reads NODELAY, KEEPALIVE, LINGER and TOS back
   * with getsockopt on every release (for code that sets options on the fd directly).
   * @default 'tracked'
   */
  resetSocketOptions?: 'tracked' | 'verify'
  /**
   * Cap on fds draining at once (their user is gone, the peer has not closed yet). Past it the
   * oldest drain is closed the way a plain socket's destroy() would (close(2): FIN, or RST with
   * unread data), counted in `stats().drainsShed`, so that drains never cause an EMFILE.
   * The cap also counts sockets still in use whose FIN is withheld after `end()` (waiting for the
   * peer to close first): a goodbye past it sends its FIN at once, as `net`'s `end()` does,
   * counted in `stats().finDelaysShed`.
   * `'auto'`: a quarter of the soft RLIMIT_NOFILE read at construction (at least 16).
   * @default 'auto'
   */
  maxDraining?: number | 'auto'
  /**
   * Bound on `close()`: how long it waits for sockets in use and draining before destroying them.
   * @default 10000
   */
  closeTimeoutMs?: number
}

export type ResolvedRecyclerOptions = Readonly<Required<RecyclerOptions>>

export const DEFAULT_OPTIONS: ResolvedRecyclerOptions = Object.freeze({
  mode: 'auto',
  finDelayMs: 1000,
  releasePolicy: 'adaptive',
  drainTimeoutMs: 5000,
  onDrainTimeout: 'close',
  maxIdle: 256,
  minIdle: 0,
  idleTimeoutMs: 30_000,
  maxReuses: 0,
  maxSockets: 0,
  acquireTimeoutMillis: 10_000,
  resetSocketOptions: 'tracked',
  maxDraining: 'auto',
  closeTimeoutMs: 10_000,
})

const MAX_TIMER_MS = 2 ** 31 - 1
const MAX_COUNT = 2 ** 31 - 1

type Check = (name: string, value: unknown) => void

const milliseconds = (min: number): Check => (name, value) => integer(name, value, min, MAX_TIMER_MS)
const count = (min: number): Check => (name, value) => integer(name, value, min, MAX_COUNT)
const oneOf = (...allowed: string[]): Check => (name, value) => {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new InvalidOptionError(name, `expected one of ${allowed.map((v) => `'${v}'`).join(', ')}, received ${describe(value)}`)
  }
}

function integer(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidOptionError(name, `expected an integer, received ${describe(value)}`)
  }
  if (value < min || value > max) {
    throw new InvalidOptionError(name, `expected an integer from ${min} to ${max}, received ${value}`)
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `the string '${value}'`
  if (typeof value === 'number') return `the number ${value}`
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`
}

const CHECKS: Record<keyof RecyclerOptions, Check> = {
  mode: oneOf('auto', 'recycle', 'passthrough'),
  finDelayMs: milliseconds(0),
  releasePolicy: oneOf('adaptive', 'fixed'),
  drainTimeoutMs: milliseconds(1),
  onDrainTimeout: oneOf('close', 'reset'),
  maxIdle: count(0),
  minIdle: count(0),
  idleTimeoutMs: milliseconds(0),
  maxReuses: count(0),
  maxSockets: count(0),
  acquireTimeoutMillis: milliseconds(1),
  resetSocketOptions: oneOf('tracked', 'verify'),
  maxDraining: (name, value) => {
    if (value === 'auto') return
    if (typeof value !== 'number') throw new InvalidOptionError(name, `expected 'auto' or an integer, received ${describe(value)}`)
    integer(name, value, 1, MAX_COUNT)
  },
  closeTimeoutMs: milliseconds(0),
}

/**
 * A release option set for one socket (`recycler.createConnection({ host, port, finDelayMs: 0 })`),
 * checked as the recycler's own: a wrong value throws ERR_FDRECYCLE_INVALID_OPTION naming it.
 */
export function socketFinDelay(value: unknown): number | undefined {
  if (value === undefined) return undefined
  CHECKS.finDelayMs('finDelayMs', value)
  return value as number
}

/**
 * Validates every option at construction: unknown keys are rejected, nothing is coerced.
 * `undefined` means "use the default".
 */
export function validateOptions(options: unknown): ResolvedRecyclerOptions {
  if (options === undefined) return DEFAULT_OPTIONS
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', `expected an object, received ${describe(options)}`)
  }
  const resolved: Record<string, unknown> = { ...DEFAULT_OPTIONS }
  for (const [key, value] of Object.entries(options)) {
    const check = (CHECKS as Record<string, Check | undefined>)[key]
    if (!check) {
      throw new InvalidOptionError(key, `unknown option; known options are ${Object.keys(CHECKS).join(', ')}`)
    }
    if (value === undefined) continue
    check(key, value)
    resolved[key] = value
  }
  const r = resolved as Required<RecyclerOptions>
  // A finDelayMs the user chose is meant as is, unless they asked for 'adaptive' (it is the cap then).
  const given = options as RecyclerOptions
  if (given.finDelayMs !== undefined && given.releasePolicy === undefined) r.releasePolicy = 'fixed'
  if (r.maxSockets > 0 && r.minIdle > r.maxSockets) {
    throw new InvalidOptionError('minIdle', `minIdle (${r.minIdle}) exceeds maxSockets (${r.maxSockets})`)
  }
  if (r.minIdle > r.maxIdle) {
    throw new InvalidOptionError('minIdle', `minIdle (${r.minIdle}) exceeds maxIdle (${r.maxIdle})`)
  }
  return Object.freeze(r)
}
