import type net from 'node:net'
import { channels, debug } from './diagnostics.js'
import type { Drain, DrainOutcome } from './drain-socket.js'
import type { FdPool } from './fd-pool.js'
import type { ResolvedRecyclerOptions } from './options.js'
import type { PooledFd } from './pooled-fd.js'
import type { ReleasePolicy } from './release-policy.js'
import { drainReported, timerFired } from './release/executor.js'
import type { ReleaseContext } from './release/protocol.js'
import { ReleaseTimers } from './release/timers.js'
import { newCounters, type Counters } from './stats.js'

/**
 * Everything a SocketRecycler owns, in one object that the modules doing its jobs take as their
 * first argument (undici's `connect(client)` style): the release protocol (release/executor.ts),
 * the pool's hooks (pool-hooks.ts), the host its sockets call (socket-host.ts). Internal: never
 * exported from the package.
 */
export class RecyclerState {
  readonly options: ResolvedRecyclerOptions
  readonly mode: 'recycling' | 'passthrough'
  pool: FdPool | null = null
  /** fds lent to a socket (a tenant holds the handle) */
  readonly active = new Set<PooledFd>()
  /** fds whose tenant has left and whose peer has not closed yet, with the drain reading them */
  readonly draining = new Map<PooledFd, Drain | null>()
  /**
   * fds in use whose tenant has ended and whose FIN is withheld (finDelayMs running), oldest first:
   * counted with the drains against maxDraining (release/executor.ts)
   */
  readonly withholding = new Set<PooledFd>()
  /** Sockets of this recycler on the plain path (passthrough, Unix paths, local ports), open. */
  readonly plain = new Set<net.Socket>()
  readonly counters: Counters = newCounters()
  /** Why an fd is being closed, for the fdClosed channel (set before the pool destroys it). */
  readonly closeReasons = new WeakMap<PooledFd, string>()
  /** The adaptive finDelay per destination (releasePolicy 'adaptive'), else null. */
  policy: ReleasePolicy | null = null
  /** maxDraining, resolved ('auto': a quarter of RLIMIT_NOFILE); 0: no cap (passthrough). */
  maxDraining = 0
  closed = false
  onSettled: (() => void) | null = null
  /** The release protocol's timers: one Node timer for every fd (release/timers.ts). */
  readonly timers = new ReleaseTimers((pooled) => timerFired(this, pooled))
  readonly onDrainReport = (drain: Drain, outcome: DrainOutcome): void => drainReported(this, drain, outcome)

  /** Refilled for each step of the release protocol (read synchronously): no object per event. */
  readonly releaseContext: { -readonly [K in keyof ReleaseContext]: ReleaseContext[K] }

  constructor(options: ResolvedRecyclerOptions, mode: 'recycling' | 'passthrough') {
    this.options = options
    this.mode = mode
    this.releaseContext = { state: 'idle', draining: false, timerArmed: false, finDelayZero: false, onDrainTimeout: options.onDrainTimeout }
  }

  /** Nothing in use, draining or open on the plain path: lets close() finish early. */
  settled(): void {
    if (this.onSettled && this.busy() === 0) this.onSettled()
  }

  /**
   * What close() waits for: sockets in use, and drains whose FIN is still withheld (bounded by
   * finDelayMs). A drain whose FIN is out waits for a peer that may never close (drainTimeoutMs):
   * close() closes it at once, as a plain socket's destroy() would have.
   */
  busy(): number {
    let draining = 0
    for (const pooled of this.draining.keys()) if (pooled.state !== 'fin-sent') draining++
    return this.active.size + this.plain.size + draining
  }

  releaseFailed(pooled: PooledFd, error: unknown): void {
    debug('fd#%d release step failed: %s', pooled.id, (error as Error).message)
    if (channels.releaseFailed.hasSubscribers) channels.releaseFailed.publish({ fd: pooled, error })
  }
}
