import dns from 'node:dns'
import net from 'node:net'
import {
  normalizeConnectArgs, dnsOptions, interleaveFamilies, invalidAddressFamily, invalidIpAddress, validateConnectOptions, type Destination,
} from './connect-args.js'
import { RecyclerClosedError, UnsupportedError } from './errors.js'
import { SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from './ffi/libc.js'
import { PeerPeek, peekPeer, setIntOption, setLinger as setLingerOption } from './ffi/syscalls.js'
import {
  adoptHandle, attemptedAddresses, netGetsockname, clearSocketTimeout, detachHandle, netBytesDispatched, netBytesRead, overrideByteCounters, setConnecting,
  resetReading, setSocketHost, socketHandle, startReadingFlagged, takeResetAndClosing, undestroy, unrefTimer, wrappedByTls,
} from './internals/node.js'
import { Dirty, type PooledFd } from './pooled-fd.js'
import { socketFinDelay } from './options.js'
import type { SocketHost, TenantExit } from './socket-host.js'

type LookupAllCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family: number) => void

interface Attempts {
  list: Destination[]
  next: number
  port: number
  errors: Error[]
  timeoutMs: number
  timer: NodeJS.Timeout | null
}

/**
 * A net.Socket whose connection runs on a pooled, unconnected fd. Everything a client library does
 * with a socket (write, end, destroy, timeouts, keep-alive, ref/unref, TLS over it) behaves as
 * with a plain socket; what differs is where the fd comes from and where it goes at the end:
 * back to the recycler, which withholds our FIN for the peer's, dissolves the connection with
 * AF_UNSPEC and keeps the fd for the next connection.
 *
 * Sockets that cannot be recycled (Unix paths, an explicit localAddress/localPort, an `onread`
 * buffer, an adopted fd or handle, a passthrough recycler) take the plain path: net.Socket's own.
 */
export class RecycledSocket extends net.Socket {
  readonly #host: SocketHost
  #pooled: PooledFd | null = null
  #plain: boolean
  #plainCounted = false
  #sawEof = false
  #dirty = 0
  /** Options this socket's constructor asked for (Node applies them on connect). */
  #wanted = 0
  #readBase = 0
  #writtenBase = 0
  #finalRead = 0
  #finalWritten = 0
  #released = false
  #serial = 0
  #attempts: Attempts | null = null
  /** #pooled was taken at connect(), before the lookup, and no connect is issued on it yet. */
  #held = false
  /** #onConnect is still among the 'connect' listeners. */
  #awaitingConnect = false

  /** @internal Made by SocketRecycler#createSocket / #createConnection, which pass their host. */
  constructor(host: object, options?: net.SocketConstructorOpts & Record<string, unknown>) {
    super(options)
    this.#host = host as SocketHost
    this.#plain = !this.#host.recycling
    if (options) {
      if (options.fd !== undefined || options.handle !== undefined || options.onread !== undefined) this.#plain = true
      this.finDelayMs = options.finDelayMs as number | undefined // validated by the setter
      if (options.noDelay) this.#wanted |= Dirty.NODELAY
      if (options.typeOfService !== undefined) this.#wanted |= Dirty.TOS
      this.#dirty = this.#wanted
      if (options.keepAlive) {
        this.#dirty |= Dirty.KEEPALIVE
        // Node applies keepAlive with uv_tcp_keepalive(on, delay), which sets TCP_KEEPIDLE (and,
        // in libuv >= 1.46, KEEPINTVL and KEEPCNT) only for a delay of a second or more: with
        // less, the last tenant's values would stay, so they are reset first.
        if (Math.trunc(Number(options.keepAliveInitialDelay ?? 0) / 1000) >= 1) this.#wanted |= Dirty.KEEPALIVE
      }
    }
  }

  #finDelayMs: number | undefined

  /**
   * This socket's own finDelayMs (`createConnection({ ..., finDelayMs: 0 })` for a protocol whose
   * peer answers only after our EOF); undefined: the recycler's. Set before `end()`, it applies to
   * the current connection (an adapter shortens it after sending a goodbye the peer may not get to).
   */
  get finDelayMs(): number | undefined {
    return this.#finDelayMs
  }

  set finDelayMs(value: number | undefined) {
    this.#finDelayMs = socketFinDelay(value)
    if (this.#finDelayMs !== undefined && this.#pooled) {
      this.#pooled.finDelayMs = this.#finDelayMs
      this.#pooled.adaptive = false // release policy: the socket's own finDelayMs wins
    }
  }

  /** Whether this socket's current connection runs on a recycled fd (false on the plain path). */
  get recycled(): boolean {
    return !this.#plain && this.#pooled !== null
  }

  /** net.Socket#connect's overloads; `finDelayMs` may come with the options. */
  override connect(options: net.SocketConnectOpts & { finDelayMs?: number | undefined }, connectionListener?: () => void): this
  override connect(port: number, host: string, connectionListener?: () => void): this
  override connect(port: number, connectionListener?: () => void): this
  override connect(path: string, connectionListener?: () => void): this
  override connect(...args: unknown[]): this {
    const { options, listener } = normalizeConnectArgs(args)
    if (this.#host.closed) {
      // on the plain path too: a closed recycler lends nothing, not even a plain socket
      if (listener) this.once('connect', listener)
      setConnecting(this, true)
      process.nextTick(() => this.destroy(new RecyclerClosedError()))
      return this
    }
    if (this.#plain || options.path != null || options.localAddress || options.localPort) {
      this.#plain = true
      // counted once net has accepted the arguments (a bad port throws here, before any fd)
      const result = listener ? super.connect(options, listener) : super.connect(options)
      if (!this.#plainCounted) {
        this.#plainCounted = true
        this.#host.plainOpened(this)
      }
      return result
    }
    const host = (options.host as string | undefined) || 'localhost'
    const family = net.isIP(host)
    const port = validateConnectOptions(options, family !== 0)
    if (listener) this.once('connect', listener)
    if (this.destroyed) {
      undestroy(this)
      this.#released = false
    }
    setConnecting(this, true)
    unrefTimer(this)
    if (family === 4 || family === 6) {
      this.#connectTo({ address: host, family }, port)
    } else {
      this.#hold(host, options)
      this.#lookup(host, port, options)
    }
    return this
  }

  /**
   * net.Socket#connect makes its handle before the lookup: code that reads `_handle`, `bufferSize`
   * or wraps the connecting socket in TLS right after connect() finds one. So does this socket: an
   * fd is taken now, of the family the host resolved to last time (or the lookup's `family`, else
   * IPv4); an fd-less handle fits either. If the lookup answers with the other family, the fd goes
   * back unused and one of that family is taken, as net moves to a new handle for its next attempt.
   * With `maxSockets` reached (or set, and no fd idle), the handle comes with the pool's answer.
   */
  #hold(host: string, options: Record<string, unknown>): void {
    const hint = options.family
    const family = hint === 4 || hint === 6 ? hint : hostFamily(host)
    const pooled = this.#host.acquireNow(family)
    if (!pooled) return
    if (this.#take(pooled)) this.#held = true
  }

  #lookup(host: string, port: number, options: Record<string, unknown>): void {
    setSocketHost(this, host)
    const lookup = (options.lookup as typeof dns.lookup | undefined) ?? dns.lookup
    const dnsopts = dnsOptions(options)
    const autoSelect = (options.autoSelectFamily as boolean | undefined) ?? net.getDefaultAutoSelectFamily()
    if (autoSelect && dnsopts.family !== 4 && dnsopts.family !== 6) {
      lookup(host, { ...dnsopts, all: true }, (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => {
        if (!this.connecting) return
        if (err) {
          this.emit('lookup', err, undefined, undefined, host)
          process.nextTick(() => this.destroy(err))
          return
        }
        for (const a of addresses) this.emit('lookup', null, a.address, a.family, host)
        if (!this.connecting) return
        const list = interleaveFamilies(addresses)
        if (list.length > 0) rememberHostFamily(host, list[0]!.family)
        if (list.length === 0) {
          // as lookupAndConnectMultiple: the first answer names the fault
          const first = addresses[0]
          const error = net.isIP(String(first?.address)) === 0
            ? invalidIpAddress(first?.address)
            : invalidAddressFamily(first?.family, options.host, options.port)
          process.nextTick(() => this.destroy(error))
          return
        }
        if (list.length > 1) {
          const requested = options.autoSelectFamilyAttemptTimeout as number | undefined
          this.#attempts = {
            list,
            next: 1,
            port,
            errors: [],
            timeoutMs: Math.max(requested ?? net.getDefaultAutoSelectFamilyAttemptTimeout(), 10),
            timer: null,
          }
          attemptedAddresses(this, true)
        }
        this.#connectTo(list[0]!, port)
      })
      return
    }
    lookup(host, dnsopts, ((err: NodeJS.ErrnoException | null, address: string, family: number) => {
      this.emit('lookup', err, address, family, host)
      if (!this.connecting) return
      if (err) {
        process.nextTick(() => this.destroy(err))
      } else if (net.isIP(address) === 0) {
        const error = invalidIpAddress(address)
        process.nextTick(() => this.destroy(error))
      } else if (family !== 4 && family !== 6) {
        const error = invalidAddressFamily(family, options.host, options.port)
        process.nextTick(() => this.destroy(error))
      } else {
        // the lookup's family picks the pool, as it picks connect or connect6 in net
        rememberHostFamily(host, family)
        this.#connectTo({ address, family }, port)
      }
    }) as unknown as LookupAllCallback)
  }

  /** Takes an fd of the destination's family (Happy Eyeballs cannot swap it), then connects it. */
  #connectTo(destination: Destination, port: number): void {
    const held = this.#held ? this.#pooled : null
    if (held) {
      if (this.#host.closed) {
        // the recycler closed during the lookup: the connect fails, the fd goes back (closed)
        this.destroy(new RecyclerClosedError())
        return
      }
      if (this.#host.refamily(held, destination.family)) {
        this.#held = false
        this.#issue(held, destination, port)
        return
      }
      this.#letGoHeld()
    }
    const serial = ++this.#serial
    const ready = this.#host.acquireNow(destination.family)
    if (ready) {
      this.#attach(ready, destination, port)
      return
    }
    this.#host.acquire(destination.family).then(
      (pooled) => {
        if (serial !== this.#serial || !this.connecting || this.destroyed || this.#pooled) {
          this.#host.giveBack(pooled)
          return
        }
        if (this.#host.closed) {
          // the recycler closed while this connect waited: the fd is closed, the connect fails
          this.#host.giveBack(pooled)
          this.destroy(new RecyclerClosedError())
          return
        }
        this.#attach(pooled, destination, port)
      },
      (err: Error) => {
        if (serial === this.#serial && this.connecting && !this.destroyed) this.destroy(err)
      },
    )
  }

  #attach(pooled: PooledFd, destination: Destination, port: number): void {
    if (!this.#take(pooled)) {
      this.#connectTo(destination, port)
      return
    }
    // (acquireNow/acquire(family) lend fds of that family: no family to adjust here)
    this.#issue(pooled, destination, port)
  }

  /** Checks the fd out to this socket and makes its handle this socket's; false if the fd had to be closed instead. */
  #take(pooled: PooledFd): boolean {
    if (!this.#host.checkout(pooled, this, this.#wanted)) return false
    const handle = pooled.handle
    this.#pooled = pooled
    this.#sawEof = false
    adoptHandle(this, handle, true)
    pooled.owner = this
    this.#readBase = handle.bytesRead
    this.#writtenBase = handle.bytesWritten
    return true
  }

  /** The fd taken at connect() goes back unused (no connect was issued on it). */
  #letGoHeld(): void {
    const pooled = this.#pooled!
    this.#held = false
    this.#pooled = null
    const handle = socketHandle(this)
    const tls = handle !== null && wrappedByTls(handle)
    detachHandle(this, false, tls)
    pooled.owner = null
    this.#host.unused(pooled, tls, this.#dirty)
  }

  /** Connects the socket's fd (its handle already the socket's) to `destination`. */
  #issue(pooled: PooledFd, destination: Destination, port: number): void {
    // release policy: the adaptive finDelay is learnt per destination
    pooled.destination = destinationKey(destination.address, port)
    const attempts = this.#attempts
    if (attempts) {
      attemptedAddresses(this).push(
        `${destination.address}:${port}`,
      )
      if (attempts.next < attempts.list.length) {
        attempts.timer = setTimeout(() => this.#attemptTimeout(destination, port), attempts.timeoutMs)
      }
    }
    this.#awaitingConnect = true
    this.prependOnceListener('connect', this.#onConnect)
    // net.Socket#connect with an IP and our handle in place: no lookup, no new handle, no Happy
    // Eyeballs (which would throw our fd away and open a socket of its own).
    setConnecting(this, false)
    super.connect({ port, host: destination.address, family: destination.family, autoSelectFamily: false } as net.TcpSocketConnectOpts)
  }

  /**
   * @internal Called when libuv has accepted this socket's connect. Reading starts now rather than
   * after 'connect' (as net's afterConnect would, under the same condition: not paused): libuv
   * then registers POLLOUT and POLLIN with epoll in one call, and after the connect only narrows it,
   * where starting later costs an EPOLL_CTL_ADD that fails with EEXIST and a MOD. Data cannot
   * overtake the connect: libuv completes the connect before it reads.
   */
  connectIssued(): void {
    const handle = socketHandle(this)
    if (!handle || this.isPaused() || this.destroyed) return
    if (startReadingFlagged(handle) !== 0) resetReading(handle)
  }

  readonly #onConnect = (): void => {
    this.#awaitingConnect = false
    const attempts = this.#attempts
    if (attempts?.timer) clearTimeout(attempts.timer)
    this.#attempts = null
    if (this.#pooled) this.#host.connected(this.#pooled)
  }

  #attemptTimeout(destination: Destination, port: number): void {
    const attempts = this.#attempts
    const pooled = this.#pooled
    if (!attempts || !pooled || !this.connecting) return
    attempts.timer = null
    this.emit('connectionAttemptTimeout', destination.address, port, destination.family)
    // As net's internalConnectMultipleTimeout: the attempt ends here, without a
    // 'connectionAttemptFailed', and the next address is tried at once. The handle goes to the
    // recycler with its connect in flight (dissolved there; a drain takes libuv's callback).
    attempts.errors.push(timedOutError(destination.address, port))
    this.#awaitingConnect = false
    this.removeListener('connect', this.#onConnect)
    this.#pooled = null
    detachHandle(this)
    pooled.owner = null
    const exit: TenantExit = { connectInFlight: true, reset: false, sawEof: false, peerFinIn: false, gone: false, tls: false, error: null, dirty: this.#dirty }
    this.#host.tenantLeft(pooled, exit)
    const next = attempts.list[attempts.next++]!
    this.#connectTo(next, attempts.port)
  }

  /** A failed attempt of a multi-address connect goes to the next address instead of destroying. */
  override destroy(error?: Error): this {
    // Only a connect error can move to the next address; a destroy without one (node:http's
    // destroySoon(), every user's destroy()) is net's own, with no field read at all.
    if (!error) return super.destroy(error)
    // An already-aborted `signal` makes the stream constructor destroy the socket inside super(),
    // before this class's fields exist: that destroy is net's own (AbortError, then 'close').
    if (!(#attempts in this)) return super.destroy(error)
    const attempts = this.#attempts
    const pooled = this.#pooled
    if (
      attempts && pooled && error && !this.destroyed &&
      (error as NodeJS.ErrnoException).syscall === 'connect' &&
      !(this.connecting && pooled.connectPending) &&
      attempts.next < attempts.list.length
    ) {
      if (attempts.timer) clearTimeout(attempts.timer)
      attempts.timer = null
      attempts.errors.push(error)
      this.#awaitingConnect = false
      this.removeListener('connect', this.#onConnect)
      this.#pooled = null
      detachHandle(this)
      pooled.owner = null
      this.#host.attemptFailed(pooled)
      setConnecting(this, true)
      const next = attempts.list[attempts.next++]!
      this.#connectTo(next, attempts.port)
      return this
    }
    if (attempts && pooled && error && (error as NodeJS.ErrnoException).syscall === 'connect' && attempts.errors.length > 0) {
      if (attempts.timer) clearTimeout(attempts.timer)
      attempts.errors.push(error)
      const all = attempts.errors
      this.#attempts = null
      const aggregate = Object.assign(new AggregateError(all), { code: (all[0] as NodeJS.ErrnoException).code })
      return super.destroy(aggregate)
    }
    return super.destroy(error)
  }

  override _final(callback: (error?: Error | null) => void): void {
    const pooled = this.#pooled
    if (this.#plain || !pooled) return super._final(callback)
    if (this.connecting) {
      this.once('connect', () => this._final(callback))
      return
    }
    // Not uv_shutdown (Node's end()): it marks the libuv handle shut for good. The recycler sends
    // our FIN itself, after the peer's when it can (finDelayMs).
    this.#host.tenantEnded(pooled)
    // 'finish' a loop turn later, as after uv_shutdown's callback: an error raised in between (a
    // write after end) destroys the socket first, as it does a plain one.
    setImmediate(callback)
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null && this.#pooled && !this.#sawEof) {
      this.#sawEof = true
      this.#host.peerEnded(this.#pooled)
    }
    return super.push(chunk, encoding)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!(#pooled in this)) return super._destroy(error, callback) // from inside super(), see destroy()
    const pooled = this.#pooled
    if (this.#attempts?.timer) clearTimeout(this.#attempts.timer)
    this.#attempts = null
    if (this.#held && pooled) {
      // Destroyed during the lookup, the fd taken at connect() and no connect issued: it goes back
      // unused; 'close' after a loop turn, as net's after its handle's close callback.
      setConnecting(this, false)
      clearSocketTimeout(this)
      this.#released = true
      this.#finalRead = 0
      this.#finalWritten = 0
      this.#letGoHeld()
      callback(error)
      setImmediate(() => this.emit('close', error !== null && error !== undefined))
      return
    }
    if (this.#plain || !pooled || !socketHandle(this)) {
      if (this.#plainCounted) {
        this.#plainCounted = false
        this.#host.plainClosed(this)
      }
      if (!this.#plain && this.connecting) {
        // Destroyed while we resolve the host or wait for an fd: a plain socket has its handle by
        // then and reports close(hadError) once the handle is closed; so do we.
        setConnecting(this, false)
        clearSocketTimeout(this)
        callback(error)
        setImmediate(() => this.emit('close', error !== null && error !== undefined))
        return
      }
      super._destroy(error, callback)
      return
    }
    const connectInFlight = this.connecting && pooled.connectPending
    setConnecting(this, false)
    clearSocketTimeout(this)
    const handle = socketHandle(this)!
    this.#finalRead = handle.bytesRead - this.#readBase
    this.#finalWritten = handle.bytesWritten - this.#writtenBase
    this.#released = true
    // destroy() aborts, as the kernel makes it abort a plain socket: a close with bytes from the
    // peer still unread sends an RST (tcp_close), and the peer stops sending at once. Such a
    // connection is dissolved with a reset and its fd reused, never drained. (Bytes already read
    // into this socket's buffer do not count: a plain close would send its FIN after them too.)
    // The same look tells whether the peer's FIN is in already (node:http destroys a `Connection:
    // close` socket before reading it): then there is nothing left to drain.
    const resetAsked = takeResetAndClosing(this)
    const peek = resetAsked || connectInFlight || this.#sawEof ? PeerPeek.NOTHING : peekAt(pooled.fd)
    const reset = resetAsked || peek === PeerPeek.DATA
    // (once it has fired, a once-listener is gone: no search of the listeners per connection)
    if (this.#awaitingConnect) {
      this.#awaitingConnect = false
      this.removeListener('connect', this.#onConnect)
    }
    const tls = wrappedByTls(handle)
    const exit: TenantExit = {
      connectInFlight, reset, sawEof: this.#sawEof, peerFinIn: peek === PeerPeek.FIN, gone: peek === PeerPeek.GONE, tls, error, dirty: this.#dirty,
    }
    const hadError = error !== null && error !== undefined
    const state = pooled.state
    if (!tls && !hadError && !connectInFlight && peek === PeerPeek.NOTHING && !reset && !this.#sawEof && handle.writeQueueSize === 0 &&
        (state === 'open' || state === 'awaiting-eof' || state === 'fin-sent')) {
      // The common early leave (node:http ends and destroys a `Connection: close` socket before the
      // server's FIN is read): the drain takes the handle over at once, still reading, so that
      // neither the EOF nor an epoll registration is lost in between.
      detachHandle(this, true, false)
      pooled.owner = null
      this.#pooled = null
      this.#host.tenantLeftDraining(pooled, exit)
      callback(error)
      setImmediate(() => this.emit('close', false))
      return
    }
    detachHandle(this, false, tls)
    pooled.owner = null
    this.#pooled = null
    if (!tls && !hadError && exit.peerFinIn) {
      // The peer closed first and its FIN is in the kernel: our FIN goes now and the fd is parked
      // (released at once, as a drained one is; nothing of the tenant is left on the handle).
      this.#host.tenantLeft(pooled, exit)
      callback(error)
      setImmediate(() => this.emit('close', hadError))
      return
    }
    if (connectInFlight) {
      // libuv owes this handle a connect callback, which net's afterConnect ignores for a destroyed
      // owner: the catcher must own the handle before the next poll phase, so not a turn later.
      this.#host.tenantLeft(pooled, exit)
      callback(error)
      setImmediate(() => this.emit('close', hadError))
      return
    }
    callback(error)
    // 'close' where a plain socket has it: after libuv's close callback, so a loop turn later, never
    // on the nextTick queue. A TLS layer destroys this socket from inside its C++ read callback;
    // a 'close' from the tick queue would let TLS free its state (destroySSL) while that callback
    // still runs (a crash, pg-adapter/test/regression/tls-handshake-failure.test.ts), and would
    // reach pg before the TLS error. Then the release: TLS lets go of the handle in its 'close'.
    setImmediate(() => {
      this.emit('close', hadError)
      this.#host.tenantLeft(pooled, exit)
    })
  }

  /**
   * As net: a reset asked for while connecting waits for the connect, then resets. net has its
   * handle from connect() on; this socket gets its fd after the lookup or the pool's answer, and
   * net's own resetAndDestroy() would find no handle yet (ERR_SOCKET_CLOSED).
   */
  override resetAndDestroy(): this {
    if (!this.#plain && this.connecting && !socketHandle(this)) {
      this.once('connect', () => super.resetAndDestroy())
      return this
    }
    return super.resetAndDestroy()
  }

  /**
   * Before the connect is issued, net's handle has no fd yet and reports no local address ({}):
   * a lent fd would report what the kernel still holds from its last use. From the connect on
   * (libuv accepted it), the kernel's answer is this connection's own, as with net.
   */
  _getsockname(): object {
    if (!this.#plain && this.connecting && !this.#pooled?.connectPending) return {}
    return netGetsockname(this)
  }

  override setNoDelay(noDelay?: boolean): this {
    if (noDelay !== false) this.#dirty |= Dirty.NODELAY
    if (!this.#pooled) {
      // Before the fd is lent, net keeps the wish and applies it once connected (afterConnect), as
      // for the constructor's noDelay: the last tenant's NODELAY then need not be reset first
      // (pg calls setNoDelay(true) before connect(): one setsockopt per connection less).
      if (noDelay === undefined || Boolean(noDelay)) this.#wanted |= Dirty.NODELAY
      else this.#wanted &= ~Dirty.NODELAY
    }
    return super.setNoDelay(noDelay)
  }

  override setKeepAlive(enable?: boolean, initialDelay?: number): this {
    if (enable) this.#dirty |= Dirty.KEEPALIVE
    return super.setKeepAlive(enable, initialDelay)
  }

  /** Node 24+: IP_TOS / IPV6_TCLASS, reset to 0 before the next tenant. */
  setTypeOfService(tos: number): this {
    this.#dirty |= Dirty.TOS
    const parent = net.Socket.prototype as unknown as { setTypeOfService?: (this: net.Socket, tos: number) => net.Socket }
    if (!parent.setTypeOfService) throw new UnsupportedError(`setTypeOfService needs Node 24 or later (this is ${process.version})`)
    parent.setTypeOfService.call(this, tos)
    return this
  }

  /**
   * SO_LINGER on this connection (reset to off before the next tenant). `{ onoff: true, seconds: 0 }`
   * makes a plain close() send RST; on a recycled socket the fd is dissolved instead.
   */
  setLinger(onoff: boolean, seconds = 0): this {
    this.#dirty |= Dirty.LINGER
    setLingerOption(this.#fdOrThrow('setLinger'), { onoff, seconds })
    return this
  }

  /**
   * SO_SNDBUF / SO_RCVBUF. The kernel locks a size set this way for the socket's life (autotuning
   * off), which cannot be undone: the fd is closed after this connection instead of reused.
   */
  setBufferSizes(sizes: { send?: number; receive?: number }): this {
    this.#dirty |= Dirty.BUFFERS
    const fd = this.#fdOrThrow('setBufferSizes')
    if (sizes.send !== undefined) setIntOption(fd, SOL_SOCKET, SO_SNDBUF, sizes.send)
    if (sizes.receive !== undefined) setIntOption(fd, SOL_SOCKET, SO_RCVBUF, sizes.receive)
    return this
  }

  #fdOrThrow(method: string): number {
    const fd = socketHandle(this)?.fd ?? -1
    if (fd < 0) throw new UnsupportedError(`${method}() needs a connected socket with an fd`)
    return fd
  }

  /** @internal bytes counters restart at 0 for each tenant (the handle's own counters do not). */
  get _bytesReadForTenant(): number {
    const handle = socketHandle(this)
    if (this.#pooled && handle) return handle.bytesRead - this.#readBase
    if (this.#released) return this.#finalRead
    return netBytesRead(this)
  }

  /** @internal */
  get _bytesWrittenForTenant(): number {
    const handle = socketHandle(this)
    if (this.#pooled && handle) return handle.bytesWritten - this.#writtenBase
    if (this.#released) return this.#finalWritten
    return netBytesDispatched(this)
  }
}

// The handle's byte counters run across tenants: the subclass answers per tenant.
overrideByteCounters(
  RecycledSocket.prototype,
  function (this: net.Socket) {
    return (this as RecycledSocket)._bytesReadForTenant
  },
  function (this: net.Socket) {
    return (this as RecycledSocket)._bytesWrittenForTenant
  },
)

/** What net records for a timed-out attempt (createConnectionError(req, UV_ETIMEDOUT)). */
function timedOutError(address: string, port: number): Error {
  const err = new Error(`connect ETIMEDOUT ${address}:${port}`) as NodeJS.ErrnoException
  err.code = 'ETIMEDOUT'
  err.errno = -110
  err.syscall = 'connect'
  Object.assign(err, { address, port })
  return err
}

/**
 * The family each host name resolved to first, last time (capped): the fd a connect() takes before
 * its lookup is of that family, so that the lookup rarely sends it back.
 */
const hostFamilies = new Map<string, 4 | 6>()
const MAX_HOST_FAMILIES = 4096

function hostFamily(host: string): 4 | 6 {
  return hostFamilies.get(host) ?? 4
}

function rememberHostFamily(host: string, family: number): void {
  if (family !== 4 && family !== 6) return
  if (hostFamilies.get(host) === family) return
  if (hostFamilies.size >= MAX_HOST_FAMILIES) hostFamilies.clear()
  hostFamilies.set(host, family)
}

/** `address:port` strings by address and port, made once: a new string per connection costs its hash at every lookup. */
const destinationKeys = new Map<string, Map<number, string>>()
const MAX_DESTINATION_KEYS = 4096

function destinationKey(address: string, port: number): string {
  let byPort = destinationKeys.get(address)
  if (!byPort) {
    if (destinationKeys.size >= MAX_DESTINATION_KEYS) destinationKeys.clear()
    byPort = new Map()
    destinationKeys.set(address, byPort)
  }
  let key = byPort.get(port)
  if (key === undefined) {
    if (byPort.size >= MAX_DESTINATION_KEYS) byPort.clear()
    key = `${address}:${port}`
    byPort.set(port, key)
  }
  return key
}

function peekAt(fd: number): PeerPeek {
  return fd < 0 ? PeerPeek.NOTHING : peekPeer(fd)
}
