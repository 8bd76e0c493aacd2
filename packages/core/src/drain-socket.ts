import net from 'node:net'
import os from 'node:os'
import { adoptHandle, detachHandle, setConnecting, startReadingFlagged } from './internals/node.js'
import { ReadDrain, readDrainsWork } from './internals/read-drain.js'
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
    const err = startReadingFlagged(this.pooled.handle)
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
