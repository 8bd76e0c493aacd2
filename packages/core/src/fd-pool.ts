import genericPool from 'generic-pool'
import { AcquireTimeoutError } from './errors.js'
import type { ResolvedRecyclerOptions } from './options.js'
import type { PooledFd } from './pooled-fd.js'

export interface FdPoolHooks {
  /** A new handle for the family; never throws (a failed prewarm yields an fd-less handle). */
  create(family: 4 | 6, prewarm: boolean): PooledFd
  /** Closes the fd; the only place fds are closed. */
  destroy(pooled: PooledFd): void
  /** Validation on borrow: make the fd ready (lazy dissolve): 'ok' to lend it, 'later' to try it again later, 'bad' to close it. */
  validate(pooled: PooledFd): Validity
}

export type Validity = 'ok' | 'later' | 'bad'

const UNLIMITED = 2 ** 31 - 1
/** At most this many not-yet-ready fds are looked at per acquire before a new one is made. */
const MAX_LATER_PER_ACQUIRE = 2
/** While callers wait for an fd, lingering (LAST_ACK) fds are looked at this often. */
const LINGER_POLL_MS = 10

/**
 * One generic-pool of fds per address family: an IPv6 fd cannot connect to an IPv4 address
 * (EAFNOSUPPORT/EINVAL), so the family picks the pool (a handle with no kernel socket yet takes the
 * family of its first connect). Idle fds are unconnected (or parked, see
 * lifecycle.ts); borrowed ones are in use or draining.
 *
 * generic-pool does: the queue of connects waiting for an fd (in order, with
 * acquireTimeoutMillis), `maxSockets`, `minIdle`, the evictor of the fds it holds, and creating
 * fds on demand. What it does not do, and this class adds once:
 * - a connect without a promise when an fd is warm: released fds stay on loan to this class
 *   (`#warm`, LIFO) and `acquireNow()` takes one synchronously; `#sweep` ages them out as
 *   generic-pool's evictor would;
 * - without a cap (`maxSockets` 0), a new fd synchronously when none is warm, so that a socket
 *   has its handle when connect() returns, as net's has (`acquireNow()`);
 * - the quarantine: a released fd is lendable only after one poll phase (`release()`);
 * - lazy validation that can say "later": a parked fd still in LAST_ACK waits in `#lingering`
 *   until its last ACK, and is looked at again by the next acquireNow() or, while connects wait,
 *   every LINGER_POLL_MS;
 * - aborting the waiting connects at once when the recycler closes (`abortWaiters`).
 * Where fds are: `#idle` holds every fd not lent to a socket, whichever of generic-pool's
 * available list, `#warm`, `#lingering`, the quarantine or cooling holds it (stats' `idle`);
 * the rest are borrowed (in use or draining). A ready fd reaches a waiting connect one way only:
 * `#offer()`.
 */
export class FdPool {
  readonly #pools: Record<4 | 6, genericPool.Pool<PooledFd>>
  readonly #options: ResolvedRecyclerOptions
  readonly #hooks: FdPoolHooks
  /** Ours, not generic-pool's `available`: its clear() leaves destroyed resources counted. */
  readonly #idle: Record<4 | 6, Set<PooledFd>> = { 4: new Set(), 6: new Set() }
  /**
   * Released fds wait here for one poll phase of the event loop before they can be lent again.
   * libuv keeps working on an fd's event after the JS callback returns (uv__stream_io calls
   * uv__drain, which stops POLLOUT), and a stale EPOLLHUP of the old connection may still sit later
   * in the same epoll batch; a connect started on that handle meanwhile would lose its POLLOUT or be
   * reported connected early. One poll phase later libuv has dropped the idle fd from epoll.
   */
  #quarantine: PooledFd[] = []
  #cooling: PooledFd[] = []
  #flushScheduled = false
  /**
   * Lendable fds kept on loan from generic-pool (LIFO), so that a connect can take one without an
   * acquire round trip (a promise, a request object and a timer per connection). Idle ones age out
   * through #sweep; when generic-pool has callers waiting (maxSockets reached), a released fd goes
   * back to generic-pool instead, to serve them in order.
   */
  readonly #warm: Record<4 | 6, PooledFd[]> = { 4: [], 6: [] }
  /** Parked fds whose last ACK has not come yet (LAST_ACK): lent once the kernel says CLOSE. FIFO. */
  readonly #lingering: Record<4 | 6, PooledFd[]> = { 4: [], 6: [] }
  #sweepTimer: NodeJS.Timeout | null = null
  #lingerTimer: NodeJS.Timeout | null = null
  /** Callers waiting in acquire() (maxSockets reached): turned away at once by abortWaiters(). */
  readonly #waiters = new Set<(err: Error) => void>()

  constructor(options: ResolvedRecyclerOptions, hooks: FdPoolHooks) {
    this.#options = options
    this.#hooks = hooks
    this.#pools = { 4: this.#createPool(4), 6: this.#createPool(6) }
  }

  #createPool(family: 4 | 6): genericPool.Pool<PooledFd> {
    const o = this.#options
    // generic-pool creates the first minIdle resources from inside createPool(): `pool` is unset then.
    let pool: genericPool.Pool<PooledFd> | undefined
    pool = genericPool.createPool<PooledFd>(
      {
        // A pool never makes a caller wait for an fd it could create: create() is synchronous and
        // cannot fail, so generic-pool never spins on a rejecting factory.
        create: async () => {
          const pooled = this.#hooks.create(family, (pool?.size ?? 0) < o.minIdle)
          this.#idle[pooled.family].add(pooled)
          return pooled
        },
        destroy: async (pooled) => {
          this.#idle[pooled.family].delete(pooled)
          this.#hooks.destroy(pooled)
        },
      },
      {
        max: o.maxSockets > 0 ? o.maxSockets : UNLIMITED,
        min: o.minIdle,
        acquireTimeoutMillis: o.acquireTimeoutMillis,
        // The soft timeout: generic-pool's hard idleTimeoutMillis evicts below `min` too, and its
        // _ensureMinimum() then makes the fd again, so the minIdle floor churned every run.
        idleTimeoutMillis: UNLIMITED,
        softIdleTimeoutMillis: o.idleTimeoutMs > 0 ? o.idleTimeoutMs : -1,
        evictionRunIntervalMillis: o.idleTimeoutMs > 0 ? Math.max(100, Math.min(o.idleTimeoutMs, 10_000)) : 0,
        numTestsPerEvictionRun: UNLIMITED,
        // LIFO: the warmest fd goes out first, cold ones age out.
        fifo: false,
        autostart: true,
      },
    )
    // generic-pool emits these for failed create/destroy; ours never reject, but an unhandled
    // 'error' event would crash the process.
    pool.on('factoryCreateError', () => {})
    pool.on('factoryDestroyError', () => {})
    return pool
  }

  /** A lendable idle fd right now (validated), or undefined: then call acquire(). */
  acquireNow(family: 4 | 6): PooledFd | undefined {
    const idle = this.#idle[family]
    // The oldest lingering fd first: its last ACK has had the most time to arrive.
    const lingering = this.#lingering[family]
    if (lingering.length > 0) {
      const pooled = lingering.shift()!
      const v = this.#hooks.validate(pooled)
      if (v === 'ok') {
        idle.delete(pooled)
        return pooled
      }
      if (v === 'later') lingering.push(pooled)
      else this.#drop(pooled)
    }
    const warm = this.#warm[family]
    let later = 0
    for (let pooled = warm.pop(); pooled; pooled = warm.pop()) {
      const v = this.#hooks.validate(pooled)
      if (v === 'ok') {
        idle.delete(pooled)
        return pooled
      }
      if (v === 'bad') {
        this.#drop(pooled)
        continue
      }
      lingering.push(pooled)
      if (++later >= MAX_LATER_PER_ACQUIRE) break
    }
    // Nothing lendable, no cap to keep (maxSockets 0), and generic-pool neither holds an idle fd nor
    // is making one (minIdle's fds go out through acquire()): a new handle at once, fd-less, as
    // net.Socket#connect makes one; the kernel socket comes with its first connect. It stays with
    // this class, never generic-pool's: released, it joins #warm like any other fd.
    const pool = this.#pools[family]
    if (this.#options.maxSockets === 0 && pool.size === pool.borrowed) return this.#hooks.create(family, false)
    return undefined
  }

  /**
   * Gives a lent handle with no kernel socket yet the family of the address it is about to connect
   * to; false if it cannot take it (it has a socket, or is generic-pool's, whose per-family
   * accounting must not change).
   */
  refamily(pooled: PooledFd, family: 4 | 6): boolean {
    if (pooled.family === family) return true
    if (pooled.fd >= 0 || this.#pools[pooled.family].isBorrowedResource(pooled)) return false
    pooled.family = family
    return true
  }

  #drop(pooled: PooledFd): void {
    this.#idle[pooled.family].delete(pooled)
    this.destroy(pooled)
  }


  async acquire(family: 4 | 6): Promise<PooledFd> {
    const now = this.acquireNow(family)
    if (now) return now
    const pool = this.#pools[family]
    for (;;) {
      let pooled: PooledFd
      try {
        pooled = await this.#wait(pool, family)
      } catch (err) {
        if (err instanceof Error && err.name === 'TimeoutError') {
          throw new AcquireTimeoutError(this.#options.acquireTimeoutMillis, this.#options.maxSockets)
        }
        throw err
      }
      const v = this.#hooks.validate(pooled)
      if (v === 'ok') {
        this.#idle[family].delete(pooled)
        return pooled
      }
      if (v === 'later') {
        // stays idle, on loan to this pool, until its last ACK
        this.#idle[family].add(pooled)
        pooled.idleSince = Date.now()
        this.#lingering[family].push(pooled)
        this.#scheduleSweep()
      }
      else this.#drop(pooled)
    }
  }


  /**
   * generic-pool's acquire, abortable by abortWaiters(). While callers wait (maxSockets reached),
   * lingering fds are looked at every LINGER_POLL_MS: one whose last ACK has come goes to them.
   */
  #wait(pool: genericPool.Pool<PooledFd>, family: 4 | 6): Promise<PooledFd> {
    if (this.#lingering[family].length > 0) this.#scheduleLingerPoll()
    return new Promise<PooledFd>((resolve, reject) => {
      let settled = false
      const abort = (err: Error): void => {
        if (settled) return
        settled = true
        this.#waiters.delete(abort)
        reject(err)
      }
      this.#waiters.add(abort)
      pool.acquire().then(
        (pooled) => {
          this.#waiters.delete(abort)
          if (!settled) {
            settled = true
            resolve(pooled)
          } else {
            // its caller was turned away (the recycler is closing): the fd is closed, not lent
            this.#drop(pooled)
          }
        },
        (err: unknown) => {
          this.#waiters.delete(abort)
          if (!settled) {
            settled = true
            reject(err)
          }
        },
      )
    })
  }

  /** Rejects every caller waiting for an fd, at once (the recycler is closing). */
  abortWaiters(err: Error): void {
    for (const abort of [...this.#waiters]) abort(err)
  }

  #scheduleLingerPoll(): void {
    if (this.#lingerTimer) return
    this.#lingerTimer = setTimeout(this.#pollLingering, LINGER_POLL_MS)
    this.#lingerTimer.unref()
  }

  readonly #pollLingering = (): void => {
    this.#lingerTimer = null
    let again = false
    for (const family of [4, 6] as const) {
      const pool = this.#pools[family]
      const lingering = this.#lingering[family]
      if (pool.pending === 0 || lingering.length === 0) continue
      const still: PooledFd[] = []
      for (const pooled of lingering) {
        if (pool.pending === 0) {
          still.push(pooled)
          continue
        }
        const v = this.#hooks.validate(pooled)
        if (v === 'later') still.push(pooled)
        else if (v === 'bad') this.#drop(pooled)
        else this.#offer(pooled) // pending > 0: to the first waiter
      }
      this.#lingering[family] = still
      if (still.length > 0 && pool.pending > 0) again = true
    }
    if (again) this.#scheduleLingerPoll()
  }

  /** Back to idle (after the quarantine), or closed if the family already keeps maxIdle idle fds. */
  release(pooled: PooledFd): void {
    if (this.idle(pooled.family) >= this.#options.maxIdle) {
      this.destroy(pooled)
      return
    }
    this.#idle[pooled.family].add(pooled)
    this.#quarantine.push(pooled)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#startCooling)
    }
  }

  // check phase of this loop turn -> (poll phase of the next) -> check phase of the next: lend again
  readonly #startCooling = (): void => {
    this.#cooling = this.#quarantine
    this.#quarantine = []
    setImmediate(this.#endCooling)
  }

  readonly #endCooling = (): void => {
    const ready = this.#cooling
    this.#cooling = []
    this.#flushScheduled = false
    for (const pooled of ready) this.#lend(pooled)
    if (this.#quarantine.length > 0) {
      this.#flushScheduled = true
      setImmediate(this.#startCooling)
    }
  }

  #lend(pooled: PooledFd): void {
    if (!this.#idle[pooled.family].has(pooled)) return // destroyed while cooling
    this.#offer(pooled)
  }

  /**
   * The one way a ready fd reaches a connect waiting in acquire(): generic-pool's release, which
   * hands it to the first caller in its queue (acquire() validates it again, which costs nothing
   * for an idle fd). With nobody waiting, the fd stays on loan to this pool, warm, for acquireNow().
   */
  #offer(pooled: PooledFd): void {
    const pool = this.#pools[pooled.family]
    if (pool.pending === 0 || !pool.isBorrowedResource(pooled)) {
      this.#warm[pooled.family].push(pooled)
      pooled.idleSince = Date.now()
      this.#scheduleSweep()
      return
    }
    pool.release(pooled).catch(() => {
      this.#idle[pooled.family].delete(pooled)
      this.#hooks.destroy(pooled)
    })
  }

  #scheduleSweep(): void {
    const idleTimeout = this.#options.idleTimeoutMs
    if (this.#sweepTimer || idleTimeout === 0) return
    this.#sweepTimer = setTimeout(this.#sweep, Math.max(100, Math.min(idleTimeout, 10_000)))
    this.#sweepTimer.unref()
  }

  /** Closes warm fds idle longer than idleTimeoutMs (generic-pool's evictor sees only its own). */
  readonly #sweep = (): void => {
    this.#sweepTimer = null
    const limit = Date.now() - this.#options.idleTimeoutMs
    for (const family of [4, 6] as const) {
      const warm = this.#warm[family]
      // LIFO: the oldest are at the bottom of the stack
      // ... but never below the minIdle floor: closed, it would only be made again.
      let stale = 0
      const surplus = this.#idle[family].size - this.#options.minIdle
      while (stale < warm.length && stale < surplus && warm[stale]!.idleSince <= limit) stale++
      for (const pooled of warm.splice(0, stale)) this.#drop(pooled)
      // Lingering fds idle too long are closed; close(2) leaves the kernel retransmitting our FIN.
      const lingering = this.#lingering[family]
      const keep = lingering.filter((p) => p.idleSince > limit)
      for (const pooled of lingering) if (!keep.includes(pooled)) this.#drop(pooled)
      this.#lingering[family] = keep
    }
    if (this.#warm[4].length + this.#warm[6].length + this.#lingering[4].length + this.#lingering[6].length > 0) this.#scheduleSweep()
  }

  destroy(pooled: PooledFd): void {
    const pool = this.#pools[pooled.family]
    if (pool.isBorrowedResource(pooled)) {
      pool.destroy(pooled).catch(() => {})
    } else {
      this.#idle[pooled.family].delete(pooled)
      this.#hooks.destroy(pooled)
    }
  }

  /** Idle fds still in quarantine (not lendable until the next poll phase has passed). */
  cooling(): number {
    return this.#quarantine.length + this.#cooling.length
  }

  idle(family?: 4 | 6): number {
    return family ? this.#idle[family].size : this.#idle[4].size + this.#idle[6].size
  }

  /** Closes every idle fd and stops creating; call once nothing is borrowed any more. */
  async close(): Promise<void> {
    if (this.#sweepTimer) clearTimeout(this.#sweepTimer)
    this.#sweepTimer = null
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer)
    this.#lingerTimer = null
    // drain() marks the pools draining at once (no more creating up to minIdle), then waits for
    // every loan to end; the fds this pool holds on loan itself end theirs here.
    const drained = Object.values(this.#pools).map((pool) => pool.drain())
    const held = [...this.#quarantine, ...this.#cooling, ...this.#warm[4], ...this.#warm[6], ...this.#lingering[4], ...this.#lingering[6]]
    this.#quarantine = []
    this.#cooling = []
    this.#warm[4] = []
    this.#warm[6] = []
    this.#lingering[4] = []
    this.#lingering[6] = []
    for (const pooled of held) {
      this.#idle[pooled.family].delete(pooled)
      this.destroy(pooled)
    }
    await Promise.all(drained)
    await Promise.all(Object.values(this.#pools).map((pool) => pool.clear()))
  }

}
