import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { channels, debug } from './diagnostics.js'
import { startDrain, type Drain, type DrainOutcome } from './drain-socket.js'
import { RecyclerClosedError, UnsupportedError } from './errors.js'
import { FdPool, type Validity } from './fd-pool.js'
import {
  IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IP_TOS, IPV6_TCLASS, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPCNT, TCP_KEEPIDLE,
  TCP_KEEPINTVL, TCP_NODELAY,
} from './ffi/libc.js'
import {
  closeFd, dissolve, dupFd, getIntOption, getLinger, openTcpSocket, resetLinger, setIntOption, shutdownWrite, takeSocketError,
  tcpState,
} from './ffi/syscalls.js'
import { TcpState, tcpStateName } from './ffi/tcp-info.js'
import { normalizeConnectArgs } from './connect-args.js'
import { nodeInternals, resetReading } from './handle/node-internals.js'
import type { FdState } from './lifecycle.js'
import { validateOptions, type RecyclerOptions, type ResolvedRecyclerOptions } from './options.js'
import { Dirty, PooledFd } from './pooled-fd.js'
import { RecycledSocket, type SocketHost, type TenantExit } from './recycled-socket.js'
import { recyclingSupport } from './support.js'

/** A snapshot of what a recycler owns and has done (undici's PoolStats, no metrics library). */
export interface RecyclerStats {
  mode: 'recycling' | 'passthrough'
  /**
   * fds (handles) the recycler has owned, pooled or behind a plain-path socket (passthrough, a Unix
   * path, an explicit localAddress/localPort): fdsCreated - fdsClosed == idle + active + draining
   */
  fdsCreated: number
  fdsClosed: number
  /** connect() calls that took an fd */
  connections: number
  /** connections served by an fd that had served one before */
  reusedConnections: number
  /** fds returned to the pool after a connection (dissolved, or parked to be dissolved) */
  recycled: number
  /** AF_UNSPEC calls that sent an RST (resetAndDestroy, reset policy, connections that broke) */
  resetsSent: number
  /** peers that sent no EOF within drainTimeoutMs */
  drainTimeouts: number
  /** connections whose peer closed first while our FIN was withheld: no TIME_WAIT on our side */
  peerClosedFirst: number
  /** connections where our FIN went first (finDelayMs elapsed or 0): TIME_WAIT on our side */
  finSentFirst: number
  /** bytes that arrived after their socket's user had let go, read and dropped (one read, then a reset) */
  discardedBytes: number
  /** idle fds in the pools (unconnected or parked), including those cooling */
  idle: number
  /** idle fds released in this or the last event-loop turn, lendable after the next poll phase */
  cooling: number
  /** fds in use by a socket (pooled or plain-path) */
  active: number
  /** fds whose user is gone and whose peer has not yet closed */
  draining: number
}

type Counters = Omit<RecyclerStats, 'mode' | 'idle' | 'cooling' | 'active' | 'draining'>

/** TCP states where tcp_disconnect() sends an RST (tcp_need_reset). */
const RST_STATES = new Set<number>([TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2, TcpState.SYN_RECV])

/**
 * Owns pools of unconnected TCP fds (one per address family) and the sockets that borrow them.
 *
 * ```ts
 * const recycler = new SocketRecycler({ finDelayMs: 500 })
 * const socket = recycler.createConnection({ host: 'db.internal', port: 5432 })
 * ```
 *
 * The release protocol (docs/lifecycle.md): when a socket's user is done, our FIN is withheld
 * for the peer's (finDelayMs), so that peers that close after a goodbye leave no TIME_WAIT here;
 * an fd is reused only after the peer's EOF, then shut down and dissolved with AF_UNSPEC, which
 * sends no RST from LAST_ACK or CLOSE. A peer that never closes meets `onDrainTimeout`.
 */
export class SocketRecycler implements SocketHost {
  readonly options: ResolvedRecyclerOptions
  readonly #mode: 'recycling' | 'passthrough'
  readonly #pool: FdPool | null
  readonly #active = new Set<PooledFd>()
  readonly #draining = new Map<PooledFd, Drain | null>()
  /** Sockets of this recycler on the plain path (passthrough, Unix paths, local ports), open. */
  readonly #plain = new Set<RecycledSocket>()
  #closed = false
  #closing: Promise<void> | null = null
  #onSettled: (() => void) | null = null
  readonly #counters: Counters = {
    fdsCreated: 0,
    fdsClosed: 0,
    connections: 0,
    reusedConnections: 0,
    recycled: 0,
    resetsSent: 0,
    drainTimeouts: 0,
    peerClosedFirst: 0,
    finSentFirst: 0,
    discardedBytes: 0,
  }

  constructor(options?: RecyclerOptions) {
    this.options = validateOptions(options)
    const support = recyclingSupport()
    if (this.options.mode === 'recycle' && !support.supported) {
      throw new UnsupportedError(support.reason ?? 'unknown reason', support.error)
    }
    this.#mode = this.options.mode !== 'passthrough' && support.supported ? 'recycling' : 'passthrough'
    debug('recycler created: mode %s%s', this.#mode, support.supported ? '' : ` (${support.reason})`)
    this.#pool = this.#mode === 'recycling'
      ? new FdPool(this.options, {
          create: (family, prewarm) => this.#createFd(family, prewarm),
          destroy: (pooled) => this.#destroyFd(pooled),
          validate: (pooled) => this.#validate(pooled),
        })
      : null
  }

  /** Same contract as net.createConnection: (options[, listener]), (port[, host][, listener]), (path[, listener]). */
  createConnection(options: net.NetConnectOpts, connectionListener?: () => void): RecycledSocket
  createConnection(port: number, host?: string, connectionListener?: () => void): RecycledSocket
  createConnection(path: string, connectionListener?: () => void): RecycledSocket
  createConnection(...args: unknown[]): RecycledSocket {
    const { options, listener } = normalizeConnectArgs(args)
    const socket = this.createSocket(constructorOptions(options))
    // as net.connect: any truthy timeout goes to setTimeout(), which checks it
    if (options.timeout) socket.setTimeout(options.timeout as number)
    return listener ? socket.connect(options, listener) : socket.connect(options)
  }

  /** An unconnected socket, for factories that call `connect(port, host)` later (pg's `stream`). */
  createSocket(options?: net.SocketConstructorOpts): RecycledSocket {
    return new RecycledSocket(this, options as (net.SocketConstructorOpts & Record<string, unknown>) | undefined)
  }

  stats(): RecyclerStats {
    return {
      mode: this.#mode,
      ...this.#counters,
      idle: this.#pool?.idle() ?? 0,
      cooling: this.#pool?.cooling() ?? 0,
      active: this.#active.size + this.#plain.size,
      draining: this.#draining.size,
    }
  }

  get recycling(): boolean {
    return this.#mode === 'recycling'
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * Stops lending fds, waits (up to closeTimeoutMs) for sockets in use and draining, destroys the
   * rest, and closes every fd the recycler owns. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    this.#closed = true
    const pool = this.#pool
    // Connects still waiting for an fd (maxSockets reached) fail now, not once one frees up.
    pool?.abortWaiters(new RecyclerClosedError())
    if (this.#active.size + this.#draining.size + this.#plain.size > 0 && this.options.closeTimeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.closeTimeoutMs)
        this.#onSettled = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    this.#onSettled = null
    const inUse = () => new RecyclerClosedError('the SocketRecycler was closed while this socket was in use (closeTimeoutMs elapsed)')
    for (const socket of [...this.#plain]) socket.destroy(inUse())
    if (!pool) return
    for (const pooled of [...this.#active]) pooled.owner?.destroy(inUse())
    for (const [pooled, drain] of [...this.#draining]) {
      drain?.abandon()
      this.#draining.delete(pooled)
      this.#close(pooled, 'recycler closed while draining')
    }
    // Destroyed tenants hand their fds back on the next tick.
    await new Promise<void>((resolve) => setImmediate(resolve))
    for (const pooled of [...this.#active]) this.#close(pooled, 'recycler closed')
    await pool.close()
  }

  #settled(): void {
    if (this.#onSettled && this.#active.size + this.#draining.size + this.#plain.size === 0) this.#onSettled()
  }

  // ---- the pool's factory -------------------------------------------------------------------

  #createFd(family: 4 | 6, prewarm: boolean): PooledFd {
    const { TCP } = nodeInternals()
    const handle = new TCP(0)
    if (prewarm) {
      try {
        const fd = openTcpSocket(family)
        if (handle.open(fd) !== 0) closeFd(fd)
      } catch (err) {
        debug('prewarm socket() failed, the fd will be made at connect: %s', (err as Error).message)
      }
    }
    handle.unref()
    const pooled = new PooledFd(handle, family, handle.fd >= 0 ? 'idle' : 'fresh')
    this.#counters.fdsCreated++
    if (channels.fdCreated.hasSubscribers) channels.fdCreated.publish({ fd: pooled, family })
    return pooled
  }

  #closeReasons = new WeakMap<PooledFd, string>()

  #destroyFd(pooled: PooledFd): void {
    if (pooled.state === 'closed') return
    const reason = this.#closeReasons.get(pooled) ?? 'evicted'
    pooled.clearTimer()
    const drain = this.#draining.get(pooled)
    if (drain) drain.abandon()
    this.#draining.delete(pooled)
    this.#active.delete(pooled)
    void pooled.fd // records the fd number for the log line before close() makes it -1
    pooled.setState('closed', reason)
    pooled.handle.close()
    this.#counters.fdsClosed++
    if (channels.fdClosed.hasSubscribers) channels.fdClosed.publish({ fd: pooled, family: pooled.family, reason })
    this.#settled()
  }

  /**
   * Validation on borrow. A parked fd is dissolved only once the kernel says CLOSE: in LAST_ACK our
   * FIN is not acknowledged yet, and may have been lost; dissolving then would stop its
   * retransmission (the peer would wait in FIN_WAIT2, or meet an RST when it resends its own FIN),
   * and even a last ACK merely late would draw an RST. Such an fd is lent later
   * (test/faults: "our FIN lost after the peer closed first").
   */
  #validate(pooled: PooledFd): Validity {
    switch (pooled.state) {
      case 'fresh':
        return 'ok'
      case 'idle':
        return pooled.fd >= 0 ? 'ok' : 'bad'
      case 'parked':
        try {
          const state = tcpState(pooled.fd)
          if (state === TcpState.LAST_ACK || state === TcpState.CLOSING) return 'later'
          dissolve(pooled.fd)
          if (state !== TcpState.CLOSE) {
            // not a state a parked fd can be in; dissolve() ended it (counted if it sent an RST)
            if (RST_STATES.has(state)) this.#counters.resetsSent++
            takeSocketError(pooled.fd)
          }
          pooled.setState('idle', 'dissolved at checkout')
          return 'ok'
        } catch (err) {
          this.#releaseFailed(pooled, err)
          return 'bad'
        }
      default:
        return 'bad'
    }
  }


  // ---- SocketHost: called by RecycledSocket -----------------------------------------------------

  acquireNow(family: 4 | 6): PooledFd | undefined {
    if (this.#closed || !this.#pool) return undefined
    return this.#pool.acquireNow(family)
  }

  acquire(family: 4 | 6): Promise<PooledFd> {
    if (this.#closed || !this.#pool) return Promise.reject(new RecyclerClosedError())
    return this.#pool.acquire(family)
  }

  giveBack(pooled: PooledFd): void {
    if (this.#closed) return this.#close(pooled, 'recycler closed')
    if (pooled.state === 'fresh' || pooled.state === 'idle') this.#pool!.release(pooled)
    else this.#close(pooled, `unexpected state ${pooled.state} on give-back`)
  }

  checkout(pooled: PooledFd, socket: RecycledSocket, wanted: number): boolean {
    pooled.finDelayMs = socket.finDelayMs ?? this.options.finDelayMs
    // Options the last tenant changed are reset here rather than at its release, and only those
    // this tenant does not set again itself: node:http's Agent asks for NODELAY and KEEPALIVE on
    // every socket, and resetting them in between would cost five setsockopt calls per connection.
    try {
      this.#resetOptions(pooled, wanted)
    } catch (err) {
      this.#releaseFailed(pooled, err)
      this.#close(pooled, 'socket option reset failed')
      return false
    }
    pooled.setState('connecting', 'checkout')
    pooled.connectPending = false
    pooled.handle.ref()
    this.#active.add(pooled)
    this.#counters.connections++
    if (pooled.uses > 0) this.#counters.reusedConnections++
    if (channels.socketAcquired.hasSubscribers) channels.socketAcquired.publish({ socket, fd: pooled, reused: pooled.uses > 0 })
    return true
  }

  connected(pooled: PooledFd): void {
    pooled.connectPending = false
    if (pooled.state === 'connecting') pooled.setState('open', 'connected')
  }

  tenantEnded(pooled: PooledFd): void {
    if (pooled.state === 'peer-closed') {
      this.#counters.peerClosedFirst++
      this.#sendFin(pooled, 'finished', 'tenant ended after the peer closed')
    } else if (pooled.state === 'open') {
      if (pooled.finDelayMs === 0) {
        this.#counters.finSentFirst++
        this.#sendFin(pooled, 'fin-sent', 'tenant ended (finDelayMs 0)')
      } else {
        pooled.setState('awaiting-eof', 'tenant ended; FIN withheld for the peer')
        this.#startTimer(pooled, pooled.finDelayMs)
      }
    }
  }

  peerEnded(pooled: PooledFd): void {
    switch (pooled.state) {
      case 'open':
        pooled.setState('peer-closed', 'peer EOF')
        break
      case 'awaiting-eof':
        pooled.clearTimer()
        this.#counters.peerClosedFirst++
        this.#sendFin(pooled, 'finished', 'peer closed first')
        break
      case 'fin-sent':
        pooled.setState('finished', 'peer EOF after our FIN')
        break
      default:
        break
    }
  }

  tenantLeft(pooled: PooledFd, exit: TenantExit): void {
    this.#active.delete(pooled)
    pooled.dirty |= exit.dirty
    if (pooled.state === 'closed') return this.#settled()
    // After close() nothing is drained or reused: the fd is closed (a plain close: FIN or RST).
    if (this.#closed) return this.#close(pooled, 'recycler closed')
    if (channels.socketReleased.hasSubscribers) {
      channels.socketReleased.publish({ fd: pooled, state: pooled.state, error: exit.error })
    }
    // A TLS tenant wraps the handle itself (TLSWrap in C++): its end() shut the libuv handle for
    // good (UV_HANDLE_SHUT) and it left an accessor on `reading`. The socket moves to a new handle.
    if (exit.tls) {
      // TLSSocket#setNoDelay/setKeepAlive go straight to the TCP handle, past our tracking.
      pooled.dirty |= Dirty.NODELAY | Dirty.KEEPALIVE | Dirty.TOS | Dirty.LINGER
      if (!this.#rehandle(pooled)) return
    }
    // (a TLS tenant's handle was replaced just above; the tenant reset a plain one's flag itself)
    if (exit.tls && !resetReading(pooled.handle)) return this.#close(pooled, 'handle.reading left non-configurable')
    // A write still queued in libuv would go out on the next connection: never reuse such a handle.
    if (pooled.handle.writeQueueSize > 0) return this.#close(pooled, 'writes still queued in libuv at destroy')
    if (pooled.state === 'connecting') return this.#settleConnect(pooled, exit.connectInFlight)
    if (exit.reset) return this.#dissolveAndRelease(pooled, 'reset (resetAndDestroy(), or destroy() with unread data)')
    if (exit.sawEof && !exit.error) {
      // The socket read the peer's EOF itself: no need to ask the kernel.
      if (pooled.state === 'peer-closed') {
        this.#counters.peerClosedFirst++
        this.#sendFin(pooled, 'finished', 'tenant left after the peer closed')
      }
      if (pooled.state === 'finished') return this.#release(pooled, 'parked', 'both FINs out')
    }
    if (!exit.tls && !exit.error) {
      // The socket saw everything that happened on its side; what the peer did since, the drain
      // will read (EOF or reset). No need to ask the kernel.
      switch (pooled.state) {
        case 'open':
          pooled.setState('awaiting-eof', 'tenant left before the peer closed')
          return this.#drain(pooled)
        case 'awaiting-eof':
        case 'fin-sent':
          return this.#drain(pooled)
        default:
          break
      }
    }
    // TLS hides the EOF and sends its FIN through libuv; an error can leave any state: ask the kernel.
    let state: number
    try {
      state = tcpState(pooled.fd)
    } catch (err) {
      this.#releaseFailed(pooled, err)
      return this.#close(pooled, 'TCP_INFO failed')
    }
    switch (state) {
      case TcpState.CLOSE:
        return this.#dissolveAndRelease(pooled, 'connection already gone', state)
      case TcpState.CLOSE_WAIT:
        if (pooled.state === 'open') pooled.setState('peer-closed', 'kernel: CLOSE_WAIT')
        this.#counters.peerClosedFirst++
        this.#sendFin(pooled, 'finished', 'tenant left after the peer closed')
        return this.#release(pooled, 'parked', 'both FINs out')
      case TcpState.LAST_ACK:
      case TcpState.CLOSING:
        // LAST_ACK: the peer's FIN came first (TLS sent ours through libuv after it)
        if (state === TcpState.LAST_ACK) this.#counters.peerClosedFirst++
        pooled.clearTimer()
        pooled.setState('finished', `kernel: ${tcpStateName(state)}`)
        return this.#release(pooled, 'parked', 'both FINs out')
      case TcpState.FIN_WAIT1:
      case TcpState.FIN_WAIT2:
        if (pooled.state !== 'fin-sent') {
          this.#counters.finSentFirst++ // through libuv (TLS end()): ours came first
          pooled.clearTimer()
          pooled.setState('fin-sent', `kernel: ${tcpStateName(state)}`)
        }
        return this.#drain(pooled)
      case TcpState.ESTABLISHED:
        if (pooled.state === 'open') pooled.setState('awaiting-eof', 'tenant left before the peer closed')
        return this.#drain(pooled)
      default:
        return this.#dissolveAndRelease(pooled, `unexpected ${tcpStateName(state)}`, state)
    }
  }

  tenantLeftDraining(pooled: PooledFd, exit: TenantExit): void {
    this.#active.delete(pooled)
    pooled.dirty |= exit.dirty
    if (this.#closed) {
      pooled.handle.readStop()
      return this.#close(pooled, 'recycler closed')
    }
    if (channels.socketReleased.hasSubscribers) {
      channels.socketReleased.publish({ fd: pooled, state: pooled.state, error: null })
    }
    if (pooled.state === 'open') pooled.setState('awaiting-eof', 'tenant left before the peer closed')
    this.#drain(pooled)
  }

  attemptFailed(pooled: PooledFd): void {
    this.#active.delete(pooled)
    this.#settleConnect(pooled, false)
  }

  abortConnect(pooled: PooledFd): void {
    const fd = pooled.fd
    if (fd < 0) return
    try {
      dissolve(fd)
    } catch (err) {
      this.#releaseFailed(pooled, err)
    }
  }

  // A plain-path socket's fd counts as created and closed in every mode (it is in `active` while
  // open), so that fdsCreated - fdsClosed == idle + active + draining always holds.
  plainOpened(socket: RecycledSocket): void {
    this.#counters.connections++
    this.#counters.fdsCreated++
    this.#plain.add(socket)
  }

  plainClosed(socket: RecycledSocket): void {
    if (!this.#plain.delete(socket)) return
    this.#counters.fdsClosed++
    this.#settled()
  }

  // ---- the release protocol ---------------------------------------------------------------------

  #settleConnect(pooled: PooledFd, inFlight: boolean): void {
    const fd = pooled.fd
    if (inFlight && fd >= 0) {
      // Dissolving a socket in SYN_SENT makes libuv complete the connect with an error; a
      // DrainSocket receives that callback, then the fd is idle.
      try {
        const state = tcpState(fd)
        dissolve(fd)
        if (RST_STATES.has(state)) this.#counters.resetsSent++
      } catch (err) {
        this.#releaseFailed(pooled, err)
        return this.#close(pooled, 'dissolve of an aborted connect failed')
      }
      const drain = startDrain(pooled, true, this.#onDrainReport)
      this.#draining.set(pooled, drain)
      pooled.handle.unref()
      return
    }
    if (fd < 0) return this.#release(pooled, 'fresh', 'connect failed before the kernel made a socket')
    // A failed non-blocking connect leaves the socket SS_CONNECTING: dissolve it before reuse.
    this.#dissolveAndRelease(pooled, 'connect failed')
  }

  #drain(pooled: PooledFd): void {
    const drain = startDrain(pooled, false, this.#onDrainReport)
    this.#draining.set(pooled, drain)
    pooled.handle.unref()
    if (pooled.timer) return
    if (pooled.state === 'fin-sent') {
      this.#startTimer(pooled, this.options.drainTimeoutMs)
    } else if (pooled.state === 'awaiting-eof') {
      if (pooled.finDelayMs === 0) {
        this.#counters.finSentFirst++
        this.#sendFin(pooled, 'fin-sent', 'tenant left (finDelayMs 0)')
        this.#startTimer(pooled, this.options.drainTimeoutMs)
      } else {
        this.#startTimer(pooled, pooled.finDelayMs)
      }
    }
  }

  readonly #onDrainReport = (drain: Drain, outcome: DrainOutcome): void => {
    const pooled = drain.pooled
    this.#draining.delete(pooled)
    this.#counters.discardedBytes += drain.discardedBytes
    if (pooled.state === 'closed') return this.#settled()
    switch (outcome.kind) {
      case 'eof':
        pooled.clearTimer()
        if (pooled.state === 'awaiting-eof') {
          this.#counters.peerClosedFirst++
          this.#sendFin(pooled, 'finished', 'peer closed during drain')
        } else if (pooled.state === 'fin-sent') {
          pooled.setState('finished', 'peer EOF during drain')
        }
        if (pooled.state === 'finished') return this.#release(pooled, 'parked', 'drained')
        return this.#dissolveAndRelease(pooled, `EOF in state ${pooled.state}`)
      case 'error':
        return this.#dissolveAndRelease(pooled, `drain: ${outcome.error.message}`)
      case 'data':
        // the peer still sends to a socket its user has left: reset it, as a plain close would
        return this.#dissolveAndRelease(pooled, 'data after the tenant left')
      case 'connect-done':
        // Dissolved before; if the connect won the race, dissolving again resets it.
        if (outcome.error === null) return this.#dissolveAndRelease(pooled, 'aborted connect completed')
        return this.#release(pooled, 'idle', 'aborted connect settled')
    }
  }

  readonly #onTimer = (pooled: PooledFd): void => {
    pooled.timer = null
    if (pooled.state === 'awaiting-eof') {
      this.#counters.finSentFirst++
      this.#sendFin(pooled, 'fin-sent', 'finDelayMs elapsed')
      if (this.#draining.has(pooled)) this.#startTimer(pooled, this.options.drainTimeoutMs)
      return
    }
    if (pooled.state === 'fin-sent' && this.#draining.has(pooled)) {
      this.#counters.drainTimeouts++
      const policy = this.options.onDrainTimeout
      debug('fd#%d: no EOF within drainTimeoutMs (%d ms): %s', pooled.id, this.options.drainTimeoutMs, policy)
      if (channels.drainTimedOut.hasSubscribers) channels.drainTimedOut.publish({ fd: pooled, policy })
      this.#draining.get(pooled)?.abandon()
      this.#draining.delete(pooled)
      if (policy === 'reset') return this.#dissolveAndRelease(pooled, 'drainTimeoutMs elapsed (reset)')
      return this.#close(pooled, 'drainTimeoutMs elapsed (close)')
    }
  }

  #startTimer(pooled: PooledFd, ms: number): void {
    pooled.clearTimer()
    pooled.timer = setTimeout(this.#onTimer, ms, pooled)
    pooled.timer.unref()
  }

  #sendFin(pooled: PooledFd, next: FdState, reason: string): void {
    try {
      shutdownWrite(pooled.fd)
    } catch (err) {
      // ENOTCONN: an RST got here first. The release path will find the socket in CLOSE.
      debug('fd#%d shutdown failed: %s', pooled.id, (err as Error).message)
    }
    pooled.setState(next, reason)
  }

  /** AF_UNSPEC now (RST where the state needs one), clear SO_ERROR, back to the pool. */
  #dissolveAndRelease(pooled: PooledFd, reason: string, knownState?: number): void {
    pooled.clearTimer()
    const fd = pooled.fd
    if (fd >= 0) {
      try {
        const state = knownState ?? tcpState(fd)
        dissolve(fd)
        if (RST_STATES.has(state)) this.#counters.resetsSent++
        // tcp_disconnect leaves ECONNRESET in sk_err (and a reset seen but never read leaves its
        // own): read it once so that the next tenant starts with none.
        takeSocketError(fd)
      } catch (err) {
        this.#releaseFailed(pooled, err)
        return this.#close(pooled, `dissolve failed (${reason})`)
      }
    }
    this.#release(pooled, fd >= 0 ? 'idle' : 'fresh', reason)
  }

  /** The last step of every successful release: options reset, limits checked, back to the pool. */
  #release(pooled: PooledFd, to: 'idle' | 'parked' | 'fresh', reason: string): void {
    pooled.clearTimer()
    this.#active.delete(pooled)
    this.#draining.delete(pooled)
    if (this.#closed) return this.#close(pooled, 'recycler closed')
    if (this.options.maxReuses > 0 && pooled.uses >= this.options.maxReuses) {
      return this.#close(pooled, `maxReuses (${this.options.maxReuses}) reached`)
    }
    if (pooled.dirty & Dirty.BUFFERS) return this.#close(pooled, 'SO_SNDBUF/SO_RCVBUF locked by a tenant')
    if (to === 'fresh') {
      // connecting -> fresh: the kernel never made a socket for this handle
      pooled.setState('fresh', reason)
    } else if (to === 'parked') {
      pooled.setState('parked', reason)
    } else {
      pooled.setState('idle', reason)
    }
    pooled.handle.unref()
    this.#counters.recycled++
    this.#pool!.release(pooled)
    this.#settled()
  }

  /** Resets the options a previous tenant changed, except those in `keep` (the next tenant sets them). */
  #resetOptions(pooled: PooledFd, keep: number): void {
    const fd = pooled.fd
    if (fd < 0) return
    let dirty = pooled.dirty
    if (this.options.resetSocketOptions === 'verify') {
      if (getIntOption(fd, IPPROTO_TCP, TCP_NODELAY) !== 0) dirty |= Dirty.NODELAY
      if (getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE) !== 0) dirty |= Dirty.KEEPALIVE
      const linger = getLinger(fd)
      if (linger.onoff || linger.seconds !== 0) dirty |= Dirty.LINGER
      if (getIntOption(fd, pooled.family === 6 ? IPPROTO_IPV6 : IPPROTO_IP, pooled.family === 6 ? IPV6_TCLASS : IP_TOS) !== 0) dirty |= Dirty.TOS
    }
    dirty &= ~keep
    pooled.dirty = 0
    if (dirty === 0) return
    // Through the handle where libuv keeps a flag of its own (UV_HANDLE_TCP_NODELAY, ..._KEEPALIVE).
    if (dirty & Dirty.NODELAY) pooled.handle.setNoDelay(false)
    if (dirty & Dirty.KEEPALIVE) {
      pooled.handle.setKeepAlive(false, 0)
      const k = keepaliveDefaults()
      setIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, k.idle)
      setIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, k.interval)
      setIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, k.count)
    }
    if (dirty & Dirty.TOS) {
      setIntOption(fd, pooled.family === 6 ? IPPROTO_IPV6 : IPPROTO_IP, pooled.family === 6 ? IPV6_TCLASS : IP_TOS, 0)
    }
    if (dirty & Dirty.LINGER) resetLinger(fd)
  }

  /** dup(fd) onto a fresh handle, close the old handle (the socket lives on through the dup). */
  #rehandle(pooled: PooledFd): boolean {
    const fd = pooled.fd
    if (fd < 0) return true
    const { TCP } = nodeInternals()
    let dup: number
    try {
      dup = dupFd(fd)
    } catch (err) {
      this.#releaseFailed(pooled, err)
      this.#close(pooled, 'dup for a new handle failed')
      return false
    }
    const handle = new TCP(0)
    if (handle.open(dup) !== 0) {
      closeFd(dup)
      handle.close()
      this.#close(pooled, 'a new handle could not adopt the socket')
      return false
    }
    handle.unref()
    const old = pooled.replaceHandle(handle)
    old.readStop()
    old.onread = noop
    old.close()
    return true
  }

  #close(pooled: PooledFd, reason: string): void {
    this.#closeReasons.set(pooled, reason)
    if (this.#pool) this.#pool.destroy(pooled)
    else this.#destroyFd(pooled)
  }

  #releaseFailed(pooled: PooledFd, error: unknown): void {
    debug('fd#%d release step failed: %s', pooled.id, (error as Error).message)
    if (channels.releaseFailed.hasSubscribers) channels.releaseFailed.publish({ fd: pooled, error })
  }
}

/** Keys of connect options that net.Socket's constructor ignores. */
const CONNECT_ONLY_KEYS = new Set([
  'port', 'host', 'path', 'localAddress', 'localPort', 'family', 'hints', 'lookup', 'timeout',
  'autoSelectFamily', 'autoSelectFamilyAttemptTimeout',
])

/**
 * The options worth passing to net.Socket's constructor, or undefined. Its `{ ...options }` copy
 * of a caller's object is a megamorphic, stub-cache-missing property walk per socket (about 15 µs
 * per connection measured here, `node --log-ic`); connect options alone need none of it.
 */
function constructorOptions(options: Record<string, unknown>): net.SocketConstructorOpts | undefined {
  for (const key in options) {
    if (!CONNECT_ONLY_KEYS.has(key)) return options as net.SocketConstructorOpts
  }
  return undefined
}

function noop(): void {}

let keepalive: { idle: number; interval: number; count: number } | undefined

/** The kernel's keepalive defaults (net.ipv4.tcp_keepalive_*), restored after a tenant changed them. */
function keepaliveDefaults(): { idle: number; interval: number; count: number } {
  if (keepalive) return keepalive
  const read = (name: string, fallback: number): number => {
    try {
      const n = Number.parseInt(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8'), 10)
      return Number.isInteger(n) && n > 0 ? n : fallback
    } catch {
      return fallback
    }
  }
  keepalive = { idle: read('tcp_keepalive_time', 7200), interval: read('tcp_keepalive_intvl', 75), count: read('tcp_keepalive_probes', 9) }
  return keepalive
}

let defaultInstance: SocketRecycler | undefined

/** One recycler per process with default options, for drop-in use by the adapters. */
export function defaultRecycler(): SocketRecycler {
  if (!defaultInstance || defaultInstance.closed) defaultInstance = new SocketRecycler()
  return defaultInstance
}
