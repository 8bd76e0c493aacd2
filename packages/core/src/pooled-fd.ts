import type net from 'node:net'
import { channels, debug, debugEnabled } from './diagnostics.js'
import { FdRecycleError, ErrorCodes } from './errors.js'
import { hookConnect, installConnectHooks as installHooks } from './internals/connect-hook.js'
import { hookNoDelay } from './internals/nodelay-hook.js'
import type { TcpHandle } from './internals/node.js'
import { canTransition, type FdState } from './lifecycle.js'

/** Socket options a tenant touched; reset before the next tenant (bit flags). */
export const Dirty = {
  NODELAY: 1,
  KEEPALIVE: 2,
  TOS: 4,
  LINGER: 8,
  /** SO_SNDBUF/SO_RCVBUF lock the size in the kernel for good: such an fd is closed, not reused. */
  BUFFERS: 16,
} as const

let nextId = 1
const kPooledFd = Symbol('fdrecycle.pooledFd')

/**
 * One fd owned by a SocketRecycler, with the libuv handle around it. Exactly one owner at a time:
 * the pool (idle states), a tenant socket, or the drain (a ReadDrain or DrainSocket adopted after the tenant
 * left). Only the recycler closes it (pool-hooks.ts: state `closed`, then `handle.close()`).
 */
export class PooledFd {
  readonly id = nextId++
  /**
   * The address family of the kernel socket, fixed once there is one; a `fresh` handle (no kernel
   * socket yet) takes the family of its first connect (RecycledSocket sets it before the connect).
   */
  family: 4 | 6
  #handle: TcpHandle
  #state: FdState
  /**
   * The handle's kernel fd once it has one (-1: not yet, or closed). `handle.fd` is a native
   * accessor, read several times per connection (socket options, shutdown, TCP_INFO, dissolve);
   * libuv sets a handle's fd once (open, or the connect that makes the socket) and clears it only
   * in uv_close, which the recycler calls after the `closed` state (or on a replaced handle).
   */
  #fd = -1
  /** Connections this fd has served (counts connect attempts that reached the kernel). */
  uses = 0
  dirty = 0
  /** What receives the handle's callbacks now: a tenant socket, a ReadDrain or a DrainSocket. */
  owner: { destroy(error?: Error): unknown } | null = null
  /** libuv has a connect request in flight for this handle (set by the connect hook below). */
  connectPending = false
  /** How long this tenant's FIN is withheld (the socket's finDelayMs, else the recycler's). */
  finDelayMs = 0
  /** Release policy: where this tenant connected (`address:port`), set at attach. */
  destination: string | null = null
  /** Release policy: this tenant's wait is the adaptive policy's, and its outcome is still to be learnt. */
  adaptive = false
  /** Release policy: when the tenant said goodbye (performance.now(); 0: not yet) and the wait it got. */
  endedAt = 0
  withheldMs = 0
  /**
   * The release protocol's timer (finDelayMs, then drainTimeoutMs), one at a time: the list of
   * release/timers.ts it waits in (null: none armed), and when it is due (performance.now()).
   */
  timerList: Set<PooledFd> | null = null
  deadline = 0
  /** When the pool last put it aside as lendable (Date.now()), for the idle sweep; a field, not a WeakMap entry per release. */
  idleSince = 0
  /** The last kernel fd number seen, for logs after close (handle.fd is -1 then). */
  lastFd = -1
  /**
   * TCP_NODELAY as last set through the handle (internals/nodelay-hook.ts): 1 on, 0 off, -1
   * unknown. A new socket has it off; a dissolve (AF_UNSPEC) and a dup leave it as it was.
   */
  noDelay: -1 | 0 | 1 = 0

  constructor(handle: TcpHandle, family: 4 | 6, state: FdState) {
    this.#handle = handle
    this.family = family
    this.#state = state
    this.lastFd = handle.fd
    PooledFd.#hook(handle, this)
  }

  get handle(): TcpHandle {
    return this.#handle
  }

  /**
   * Moves the kernel socket to another handle (after a dup): the only way to be rid of libuv state
   * that cannot be reset from JS, such as the UV_HANDLE_SHUT flag a TLS tenant's end() leaves.
   */
  replaceHandle(handle: TcpHandle): TcpHandle {
    const old = this.#handle
    this.#handle = handle
    this.#fd = -1
    this.lastFd = handle.fd
    PooledFd.#hook(handle, this)
    return old
  }

  static #hook(handle: TcpHandle, pooled: PooledFd): void {
    handle[kPooledFd] = pooled
    // libuv accepts a connect (returns 0) and will call back later, or fails at once. Knowing
    // which tells a destroy-while-connecting apart from a failed connect.
    hookConnect(handle)
    hookNoDelay(handle, pooled)
  }

  get state(): FdState {
    return this.#state
  }

  get fd(): number {
    if (this.#fd >= 0) return this.#fd
    const fd = this.#handle.fd
    if (fd >= 0) {
      this.lastFd = fd
      if (this.#state !== 'closed') this.#fd = fd
    }
    return fd
  }

  /** Moves along docs/lifecycle.md; any other move is a bug and throws. */
  setState(to: FdState, reason: string): void {
    const from = this.#state
    if (from === to) return
    if (!canTransition(from, to)) {
      throw new FdRecycleError(ErrorCodes.INTERNAL, `fd#${this.id} (fd ${this.lastFd}): illegal transition ${from} -> ${to} (${reason})`)
    }
    this.#state = to
    if (to === 'closed') this.#fd = -1 // handle.close() follows: from now on the handle answers
    if (debugEnabled) debug('fd#%d (fd %d) %s -> %s: %s', this.id, this.lastFd, from, to, reason)
    if (channels.fdTransition.hasSubscribers) {
      channels.fdTransition.publish({ fd: this, from, to, reason })
    }
  }

  get timerArmed(): boolean {
    return this.timerList !== null
  }

  clearTimer(): void {
    if (this.timerList) {
      this.timerList.delete(this)
      this.timerList = null
      this.deadline = 0
    }
  }

  static of(handle: TcpHandle): PooledFd | undefined {
    return handle[kPooledFd] as PooledFd | undefined
  }
}

/** Once per process (support.ts): pooled handles report each connect libuv accepts. */
export function installConnectHooks(connect: TcpHandle['connect'], connect6: TcpHandle['connect6']): void {
  installHooks(connect, connect6, connectIssued)
}

/** What the owner of a handle is told when libuv has accepted its connect. */
export interface ConnectObserver {
  connectIssued(): void
}

function connectIssued(handle: TcpHandle, ret: number): void {
  const pooled = handle[kPooledFd] as PooledFd
  pooled.connectPending = ret === 0
  if (ret === 0) {
    pooled.uses++
    ;(pooled.owner as Partial<ConnectObserver> | null)?.connectIssued?.()
  }
}
