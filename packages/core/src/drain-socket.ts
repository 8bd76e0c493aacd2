import net from 'node:net'
import os from 'node:os'
import { adoptHandle, detachHandle, nodeInternals, resetReading, type TcpHandle } from './handle/node-internals.js'
import type { PooledFd } from './pooled-fd.js'

const UV_EALREADY = -os.constants.errno.EALREADY // libuv reports errno negated

export type DrainOutcome =
  | { kind: 'eof' }
  /** the peer sent data after the tenant had left: a plain socket's close would have drawn an RST */
  | { kind: 'data' }
  | { kind: 'error'; error: Error }
  /** a connect that was in flight when its tenant left completed (with an error, as aborted) */
  | { kind: 'connect-done'; error: Error | null }

/** What the recycler holds for a draining fd: a DrainSocket or a ReadDrain. */
export interface Drain {
  readonly pooled: PooledFd
  readonly discardedBytes: number
  abandon(): void
}

export type DrainReport = (drain: Drain, outcome: DrainOutcome) => void

/**
 * A drain for a handle whose tenant left before the peer's EOF (node:http does so after every
 * `Connection: close` response): a DrainSocket while a connect is in flight (Node's afterConnect
 * needs a socket), a ReadDrain otherwise.
 */
export function startDrain(pooled: PooledFd, connectPending: boolean, report: DrainReport): Drain {
  if (!connectPending && readDrainsWork()) return new ReadDrain(pooled, report)
  return new DrainSocket(pooled, connectPending, report)
}

/**
 * The lightest owner a reading handle can have: the members Node's onStreamRead touches on
 * `handle[owner_symbol]` (kUpdateTimer, destroyed, push, read, destroy, on,
 * _readableState.endEmitted; the same in Node 20 to 26) and nothing else, where a DrainSocket is
 * a whole net.Socket (a Duplex, its states, an EventEmitter) made and dropped per connection.
 */
export class ReadDrain implements Drain {
  readonly pooled: PooledFd
  discardedBytes = 0
  destroyed = false
  readonly _readableState = { endEmitted: false }
  #report: DrainReport | null

  constructor(pooled: PooledFd, report: DrainReport) {
    this.pooled = pooled
    this.#report = report
    const i = nodeInternals()
    const handle = pooled.handle
    handle[i.ownerSymbol] = this
    handle.onread = i.onStreamRead
    pooled.owner = this
    // The tenant may have handed the handle over still reading (no readStop, no epoll_ctl).
    if (handle.reading) return
    handle.reading = true
    const err = handle.readStart()
    if (err !== 0 && err !== UV_EALREADY) {
      this.#finish({ kind: 'error', error: Object.assign(new Error(`readStart failed (${err})`), { errno: err }) })
    }
  }

  push(chunk: Buffer | null): boolean {
    if (chunk === null) {
      this.#finish({ kind: 'eof' })
      return false
    }
    // One read at most: data after the tenant left is answered with a reset, as the kernel
    // answers data for a closed socket (the peer stops sending at once).
    this.discardedBytes += chunk.length
    this.#finish({ kind: 'data' })
    return false
  }

  read(_size?: number): null {
    return null
  }

  on(_event: string, _listener: unknown): this {
    return this
  }

  destroy(error?: Error | null): this {
    this.#finish({ kind: 'error', error: error ?? new Error('drain destroyed') })
    return this
  }

  #finish(outcome: DrainOutcome): void {
    const report = this.#report
    if (!report) return
    this.abandon()
    report(this, outcome)
  }

  abandon(): void {
    if (this.destroyed) return
    this.#report = null
    this.destroyed = true
    const handle = this.pooled.handle
    handle.readStop()
    resetReading(handle)
    handle.onread = noop
    this.pooled.owner = null
  }
}

function noop(): void {}

let readDrains: boolean | undefined

/** Whether a ReadDrain can stand in for a socket here; gives it its kUpdateTimer method once. */
function readDrainsWork(): boolean {
  if (readDrains !== undefined) return readDrains
  const symbol = nodeInternals().updateTimerSymbol
  // onStreamRead calls stream[kUpdateTimer]() on every read: a drain has no timer to update.
  if (symbol) (ReadDrain.prototype as unknown as Record<symbol, () => void>)[symbol] = noop
  readDrains = symbol !== undefined
  return readDrains
}

/**
 * Holds a handle after its tenant has left and before the fd is settled: it receives the callbacks
 * Node still owes the handle (a connect in flight, data, the peer's EOF or an error) and reports
 * how the fd ended; the first data ends it (the recycler resets the connection, as the kernel
 * would for a closed plain socket). Never closes the handle: the recycler does, or returns it to the pool.
 */
export class DrainSocket extends net.Socket implements Drain {
  readonly pooled: PooledFd
  discardedBytes = 0
  #report: DrainReport | null

  constructor(pooled: PooledFd, connectPending: boolean, report: DrainReport) {
    super({ allowHalfOpen: true })
    this.pooled = pooled
    this.#report = report
    adoptHandle(this, pooled.handle, false)
    pooled.owner = this
    if (connectPending) {
      // Node's afterConnect asserts `connecting` on the handle's owner, then emits 'connect' or
      // destroys it with the connect error.
      setConnecting(this, true)
      this.once('connect', () => this.#finish({ kind: 'connect-done', error: null }))
    } else {
      this.startReading()
    }
  }

  /** Reads (and discards) until EOF or an error. */
  startReading(): void {
    const handle = this.pooled.handle
    if (handle.reading) return
    handle.reading = true
    const err = handle.readStart()
    // UV_EALREADY: the tenant's read goes on (handed over without readStop), which is the point.
    if (err !== 0 && err !== UV_EALREADY) {
      this.#finish({ kind: 'error', error: Object.assign(new Error(`readStart failed (${err})`), { errno: err }) })
    }
  }

  override push(chunk: unknown): boolean {
    if (chunk === null) {
      this.#finish({ kind: 'eof' })
      return false
    }
    this.discardedBytes += (chunk as Buffer).length // one read at most, as in ReadDrain
    this.#finish({ kind: 'data' })
    return false
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const wasConnecting = this.connecting
    setConnecting(this, false)
    callback(null) // errors are reported to the recycler, never emitted: nobody listens here
    if (wasConnecting || this.pooled.connectPending) {
      this.#finish({ kind: 'connect-done', error: error ?? new Error('connect aborted') })
    } else {
      this.#finish({ kind: 'error', error: error ?? new Error('drain destroyed') })
    }
  }

  /** Detaches the handle and reports once; later callbacks find no handle. */
  #finish(outcome: DrainOutcome): void {
    const report = this.#report
    if (!report) return
    this.#report = null
    this.pooled.connectPending = false
    detachHandle(this)
    this.pooled.owner = null
    report(this, outcome)
  }

  /** The recycler settles the fd some other way (timeout, close): stop listening. */
  abandon(): void {
    if (!this.#report) return
    this.#report = null
    detachHandle(this)
    this.pooled.owner = null
  }
}

/** `connecting` is a plain property Node's net code sets; @types/node declares it read-only. */
function setConnecting(socket: net.Socket, value: boolean): void {
  ;(socket as unknown as { connecting: boolean }).connecting = value
}
