import os from 'node:os'
import type { Drain, DrainOutcome, DrainReport } from '../drain-socket.js'
import type { PooledFd } from '../pooled-fd.js'
import { nodeInternals, startReadingFlagged } from './node.js'

const UV_EALREADY = -os.constants.errno.EALREADY // libuv reports errno negated

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
    const err = startReadingFlagged(handle)
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
    // A plain store: a drained handle never carries a TLS tenant's `reading` accessor (tenantLeft
    // reset it or moved the socket to a new handle before any drain, and the constructor's
    // startReadingFlagged already relies on that), so no property descriptor per connection.
    handle.reading = false
    handle.onread = noop
    this.pooled.owner = null
  }
}

function noop(): void {}

let readDrains: boolean | undefined

/** Whether a ReadDrain can stand in for a socket here; gives it its kUpdateTimer method once. */
export function readDrainsWork(): boolean {
  if (readDrains !== undefined) return readDrains
  const symbol = nodeInternals().updateTimerSymbol
  // onStreamRead calls stream[kUpdateTimer]() on every read: a drain has no timer to update.
  if (symbol) (ReadDrain.prototype as unknown as Record<symbol, () => void>)[symbol] = noop
  readDrains = symbol !== undefined
  return readDrains
}
