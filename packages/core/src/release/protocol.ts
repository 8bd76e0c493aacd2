import { TcpState, tcpStateName } from '../ffi/tcp-info.js'
import type { FdState } from '../lifecycle.js'

/**
 * The release protocol as one table: `step(context, event) -> { to, actions }`. Pure: no fd, no
 * timer, no socket. The executor (executor.ts) carries the actions out in order; every decision
 * about when our FIN goes, which timer runs and whether an fd is parked, dissolved or closed is
 * made here. Every result is a frozen constant built once: a step allocates nothing.
 */

/** What the table needs to know about an fd besides its state. */
export interface ReleaseContext {
  readonly state: FdState
  /** a drain (ReadDrain / DrainSocket) holds the handle: the tenant is gone */
  readonly draining: boolean
  /** the release protocol's timer (finDelayMs or drainTimeoutMs) is running */
  readonly timerArmed: boolean
  /** this tenant's finDelayMs is 0: our FIN goes at once */
  readonly finDelayZero: boolean
  readonly onDrainTimeout: 'close' | 'reset'
}

export type ReleaseEvent =
  /** the tenant called end() (net's _final): it is done writing */
  | { readonly kind: 'tenant-ended' }
  /** the tenant's socket read the peer's EOF */
  | { readonly kind: 'peer-eof' }
  /** the tenant let go of the fd (destroy, or 'close' after end) */
  | {
      readonly kind: 'tenant-left'
      /** libuv has a connect in flight for the handle */
      readonly connectInFlight: boolean
      /** resetAndDestroy() */
      readonly reset: boolean
      /** the socket read the peer's EOF itself */
      readonly sawEof: boolean
      /** the kernel holds the peer's FIN with nothing unread before it (a peek at destroy) */
      readonly peerFinIn: boolean
      /** that peek met an error (a reset): the connection is gone, and its error was consumed */
      readonly gone: boolean
      /** a TLS socket wrapped the handle (its EOF and FIN went past the socket) */
      readonly tls: boolean
      /** the socket was destroyed with an error */
      readonly error: boolean
      /** the kernel made a socket for the handle (fd >= 0) */
      readonly hasFd: boolean
    }
  /** the state TCP_INFO reported after a `query-kernel` action */
  | { readonly kind: 'kernel-state'; readonly tcp: number }
  /**
   * the protocol's timer fired (finDelayMs or drainTimeoutMs); `peerFinIn`: the kernel already
   * holds the peer's FIN (CLOSE_WAIT), read by the executor when our FIN was withheld (a busy loop
   * runs expired timers before the I/O that carries the peer's EOF)
   */
  | { readonly kind: 'timer'; readonly peerFinIn: boolean }
  /** the drain read the peer's EOF */
  | { readonly kind: 'drain-eof' }
  /** the drain met an error (a reset, a failed read) */
  | { readonly kind: 'drain-error' }
  /** the peer sent data after the tenant left: a plain socket's close would have drawn an RST */
  | { readonly kind: 'drain-data' }
  /** a connect aborted when its tenant left has completed (`failed`: as aborted, else it won the race) */
  | { readonly kind: 'connect-done'; readonly failed: boolean }
  /** one attempt of a multi-address connect failed: the fd is settled, the socket tries the next */
  | { readonly kind: 'attempt-failed'; readonly hasFd: boolean }
  /**
   * the socket let go of an fd it took at connect() (as net makes its handle there) before any
   * connect was issued on it: destroyed during the lookup, or the lookup chose the other family
   */
  | { readonly kind: 'never-connected'; readonly hasFd: boolean }

export type Counter = 'peerClosedFirst' | 'finSentFirst' | 'drainTimeouts'

export type ReleaseAction =
  /** count in stats() */
  | { readonly op: 'count'; readonly counter: Counter }
  | { readonly op: 'clear-timer' }
  /** shutdown(SHUT_WR): our FIN */
  | { readonly op: 'fin' }
  /** PooledFd#setState */
  | { readonly op: 'move'; readonly to: FdState; readonly reason: string }
  | { readonly op: 'start-timer'; readonly timer: 'finDelay' | 'drain' }
  /** hand the handle to a drain that reads until EOF (ReadDrain) */
  | { readonly op: 'drain' }
  /** AF_UNSPEC on a connect in flight, then a DrainSocket catches libuv's connect callback */
  | { readonly op: 'abort-connect-and-drain' }
  /** ask TCP_INFO, then step again with a `kernel-state` event */
  | { readonly op: 'query-kernel' }
  /** drainTimeoutMs elapsed: publish it and stop the drain */
  | { readonly op: 'drain-timed-out' }
  /** AF_UNSPEC now (an RST where the state needs one), SO_ERROR read once, back to the pool idle */
  | { readonly op: 'dissolve'; readonly reason: string; readonly knownTcp?: boolean }
  /** back to the pool without a syscall: parked (both FINs out), idle (already dissolved) or fresh (no socket) */
  | { readonly op: 'release'; readonly to: 'parked' | 'idle' | 'fresh'; readonly reason: string }
  /** close(2): the fd is not reused */
  | { readonly op: 'close'; readonly reason: string }

export interface ReleaseStep {
  /** The state the row's moves end in (the fd's state before any release to the pool). */
  readonly to: FdState
  readonly actions: readonly ReleaseAction[]
}

// ---- action constants ----------------------------------------------------------------------------

const count = (counter: Counter): ReleaseAction => Object.freeze({ op: 'count', counter })
const move = (to: FdState, reason: string): ReleaseAction => Object.freeze({ op: 'move', to, reason })
const release = (to: 'parked' | 'idle' | 'fresh', reason: string): ReleaseAction => Object.freeze({ op: 'release', to, reason })
const dissolve = (reason: string, knownTcp = false): ReleaseAction =>
  Object.freeze(knownTcp ? { op: 'dissolve', reason, knownTcp } : { op: 'dissolve', reason })
const close = (reason: string): ReleaseAction => Object.freeze({ op: 'close', reason })

const FIN: ReleaseAction = Object.freeze({ op: 'fin' })
const CLEAR_TIMER: ReleaseAction = Object.freeze({ op: 'clear-timer' })
const DRAIN: ReleaseAction = Object.freeze({ op: 'drain' })
const FIN_DELAY_TIMER: ReleaseAction = Object.freeze({ op: 'start-timer', timer: 'finDelay' })
const DRAIN_TIMER: ReleaseAction = Object.freeze({ op: 'start-timer', timer: 'drain' })
const QUERY_KERNEL: ReleaseAction = Object.freeze({ op: 'query-kernel' })
const PEER_FIRST = count('peerClosedFirst')
const FIN_FIRST = count('finSentFirst')
const PARK_BOTH_FINS = release('parked', 'both FINs out')

function row(from: FdState, ...actions: ReleaseAction[]): ReleaseStep {
  let to = from
  for (const a of actions) if (a.op === 'move') to = a.to
  return Object.freeze({ to, actions: Object.freeze(actions) })
}

/** Rows that change nothing, one per state. */
const STAY = memo((state) => row(state))

function memo<T>(make: (state: FdState) => T): (state: FdState) => T {
  const cache = new Map<FdState, T>()
  return (state) => {
    let value = cache.get(state)
    if (value === undefined) {
      value = make(state)
      cache.set(state, value)
    }
    return value
  }
}

// ---- the rows ----------------------------------------------------------------------------------

/**
 * A drain takes the handle; then the timer the state calls for, unless one runs already:
 * awaiting-eof withholds our FIN for finDelayMs (or sends it now with finDelayMs 0, then waits
 * drainTimeoutMs for the EOF); fin-sent waits drainTimeoutMs.
 */
function drainFrom(state: FdState, timerArmed: boolean, finDelayZero: boolean, ...before: ReleaseAction[]): ReleaseStep {
  if (timerArmed) return row(state, ...before, DRAIN)
  if (state === 'fin-sent') return row(state, ...before, DRAIN, DRAIN_TIMER)
  if (state === 'awaiting-eof') {
    return finDelayZero
      ? row(state, ...before, DRAIN, FIN_FIRST, FIN, move('fin-sent', 'tenant left (finDelayMs 0)'), DRAIN_TIMER)
      : row(state, ...before, DRAIN, FIN_DELAY_TIMER)
  }
  return row(state, ...before, DRAIN)
}
/** drainRow's results by state, then by (timerArmed, finDelayZero, leaveOpen) as three bits: no key string per call. */
const DRAIN_ROWS = new Map<FdState, (ReleaseStep | undefined)[]>()
function drainRow(state: FdState, timerArmed: boolean, finDelayZero: boolean, leaveOpen: boolean): ReleaseStep {
  let rows = DRAIN_ROWS.get(state)
  if (!rows) {
    rows = new Array<ReleaseStep | undefined>(8)
    DRAIN_ROWS.set(state, rows)
  }
  const i = (timerArmed ? 4 : 0) | (finDelayZero ? 2 : 0) | (leaveOpen ? 1 : 0)
  let r = rows[i]
  if (!r) {
    r = leaveOpen && state === 'open'
      ? drainFrom('awaiting-eof', timerArmed, finDelayZero, move('awaiting-eof', 'tenant left before the peer closed'))
      : drainFrom(state, timerArmed, finDelayZero)
    rows[i] = r
  }
  return r
}

const TENANT_ENDED = {
  peerClosed: row('peer-closed', PEER_FIRST, FIN, move('finished', 'tenant ended after the peer closed')),
  openNow: row('open', FIN_FIRST, FIN, move('fin-sent', 'tenant ended (finDelayMs 0)')),
  openWithheld: row('open', move('awaiting-eof', 'tenant ended; FIN withheld for the peer'), FIN_DELAY_TIMER),
}

const PEER_EOF = {
  open: row('open', move('peer-closed', 'peer EOF')),
  awaitingEof: row('awaiting-eof', CLEAR_TIMER, PEER_FIRST, FIN, move('finished', 'peer closed first')),
  finSent: row('fin-sent', move('finished', 'peer EOF after our FIN')),
}

const CONNECT = {
  abortInFlight: row('connecting', Object.freeze({ op: 'abort-connect-and-drain' }) as ReleaseAction),
  noSocket: row('connecting', release('fresh', 'connect failed before the kernel made a socket')),
  // A failed non-blocking connect leaves the socket SS_CONNECTING: dissolve it before reuse.
  failed: row('connecting', dissolve('connect failed')),
  // No connect was ever issued: the socket is as the pool lent it (unconnected), or has none yet.
  unusedFd: row('connecting', release('idle', 'taken at connect(), never connected')),
  unusedNoSocket: row('connecting', release('fresh', 'taken at connect(), never connected')),
}

const LEFT = {
  reset: memo((s) => row(s, dissolve('reset (resetAndDestroy(), or destroy() with unread data)'))),
  peerClosed: row('peer-closed', PEER_FIRST, FIN, move('finished', 'tenant left after the peer closed'), PARK_BOTH_FINS),
  finished: row('finished', PARK_BOTH_FINS),
  // the peer's FIN is in the kernel, unread: no drain, our FIN now (the timer of a withheld FIN goes)
  peerFinIn: memo((s) => row(s, CLEAR_TIMER, PEER_FIRST, FIN, move('finished', 'tenant left; the peer\'s FIN was in'), PARK_BOTH_FINS)),
  finSentPeerFinIn: row('fin-sent', CLEAR_TIMER, move('finished', 'tenant left; the peer\'s FIN was in after ours'), PARK_BOTH_FINS),
  askKernel: memo((s) => row(s, QUERY_KERNEL)),
}

const KERNEL = {
  close: memo((s) => row(s, dissolve('connection already gone', true))),
  closeWait: memo((s) =>
    s === 'open'
      ? row(s, move('peer-closed', 'kernel: CLOSE_WAIT'), PEER_FIRST, FIN, move('finished', 'tenant left after the peer closed'), PARK_BOTH_FINS)
      : row(s, PEER_FIRST, FIN, move('finished', 'tenant left after the peer closed'), PARK_BOTH_FINS)),
  lastAck: memo((s) => row(s, PEER_FIRST, CLEAR_TIMER, move('finished', 'kernel: LAST_ACK'), PARK_BOTH_FINS)),
  closing: memo((s) => row(s, CLEAR_TIMER, move('finished', 'kernel: CLOSING'), PARK_BOTH_FINS)),
}

const DRAIN_EOF = {
  awaitingEof: row('awaiting-eof', CLEAR_TIMER, PEER_FIRST, FIN, move('finished', 'peer closed during drain'), release('parked', 'drained')),
  finSent: row('fin-sent', CLEAR_TIMER, move('finished', 'peer EOF during drain'), release('parked', 'drained')),
  finished: row('finished', CLEAR_TIMER, release('parked', 'drained')),
  other: memo((s) => row(s, CLEAR_TIMER, dissolve(`EOF in state ${s}`))),
}
const DRAIN_ERROR = memo((s) => row(s, dissolve('drain error')))
const DRAIN_DATA = memo((s) => row(s, dissolve('data after the tenant left')))
const CONNECT_DONE = {
  won: memo((s) => row(s, dissolve('aborted connect completed'))),
  failed: memo((s) => row(s, release('idle', 'aborted connect settled'))),
}

const TIMER = {
  finDelayAttached: row('awaiting-eof', FIN_FIRST, FIN, move('fin-sent', 'finDelayMs elapsed')),
  // the peer closed first after all: ours leaves no TIME_WAIT; its EOF reaches the tenant or drain next
  peerFinIn: row('awaiting-eof', PEER_FIRST, FIN, move('finished', 'peer FIN already in when finDelayMs elapsed')),
  finDelayDraining: row('awaiting-eof', FIN_FIRST, FIN, move('fin-sent', 'finDelayMs elapsed'), DRAIN_TIMER),
  drainReset: row('fin-sent', count('drainTimeouts'), Object.freeze({ op: 'drain-timed-out' }) as ReleaseAction, dissolve('drainTimeoutMs elapsed (reset)')),
  drainClose: row('fin-sent', count('drainTimeouts'), Object.freeze({ op: 'drain-timed-out' }) as ReleaseAction, close('drainTimeoutMs elapsed (close)')),
}


/** The release protocol: what happens to an fd in `ctx` when `event` occurs. */
export function step(ctx: ReleaseContext, event: ReleaseEvent): ReleaseStep {
  const s = ctx.state
  switch (event.kind) {
    case 'tenant-ended':
      if (s === 'peer-closed') return TENANT_ENDED.peerClosed
      if (s === 'open') return ctx.finDelayZero ? TENANT_ENDED.openNow : TENANT_ENDED.openWithheld
      return STAY(s)

    case 'peer-eof':
      if (s === 'open') return PEER_EOF.open
      if (s === 'awaiting-eof') return PEER_EOF.awaitingEof
      if (s === 'fin-sent') return PEER_EOF.finSent
      return STAY(s)

    case 'tenant-left':
      if (s === 'connecting') {
        if (event.connectInFlight && event.hasFd) return CONNECT.abortInFlight
        return event.hasFd ? CONNECT.failed : CONNECT.noSocket
      }
      if (event.reset) return LEFT.reset(s)
      if (event.sawEof && !event.error) {
        // the socket read the peer's EOF itself: no need to ask the kernel
        if (s === 'peer-closed') return LEFT.peerClosed
        if (s === 'finished') return LEFT.finished
      }
      if (event.peerFinIn && !event.tls && !event.error) {
        // the kernel holds the peer's FIN and nothing before it: what a drain would read next (a
        // socket destroyed with an error has the kernel asked: a reset read earlier also peeks as EOF)
        if (s === 'open' || s === 'awaiting-eof') return LEFT.peerFinIn(s)
        if (s === 'fin-sent') return LEFT.finSentPeerFinIn
        if (s === 'peer-closed') return LEFT.peerClosed
        if (s === 'finished') return LEFT.finished
      }
      if (!event.tls && !event.error && !event.gone && (s === 'open' || s === 'awaiting-eof' || s === 'fin-sent')) {
        // The socket saw everything that happened on its side; what the peer did since, the drain
        // will read (EOF or reset).
        return drainRow(s, ctx.timerArmed, ctx.finDelayZero, true)
      }
      // TLS hides the EOF and sends its FIN through libuv; an error can leave any state.
      return LEFT.askKernel(s)

    case 'kernel-state':
      switch (event.tcp) {
        case TcpState.CLOSE:
          return KERNEL.close(s)
        case TcpState.CLOSE_WAIT:
          return KERNEL.closeWait(s)
        case TcpState.LAST_ACK:
          // the peer's FIN came first (TLS sent ours through libuv after it)
          return KERNEL.lastAck(s)
        case TcpState.CLOSING:
          return KERNEL.closing(s)
        case TcpState.FIN_WAIT1:
        case TcpState.FIN_WAIT2:
          if (s === 'fin-sent') return drainRow(s, ctx.timerArmed, ctx.finDelayZero, false)
          // through libuv (TLS end()): ours came first
          return kernelFinWait(s, event.tcp)
        case TcpState.ESTABLISHED:
          return drainRow(s, ctx.timerArmed, ctx.finDelayZero, true)
        default:
          return kernelUnexpected(s, event.tcp)
      }

    case 'timer':
      if (s === 'awaiting-eof') {
        if (event.peerFinIn) return TIMER.peerFinIn
        return ctx.draining ? TIMER.finDelayDraining : TIMER.finDelayAttached
      }
      if (s === 'fin-sent' && ctx.draining) return ctx.onDrainTimeout === 'reset' ? TIMER.drainReset : TIMER.drainClose
      return STAY(s)

    case 'drain-eof':
      if (s === 'awaiting-eof') return DRAIN_EOF.awaitingEof
      if (s === 'fin-sent') return DRAIN_EOF.finSent
      if (s === 'finished') return DRAIN_EOF.finished
      return DRAIN_EOF.other(s)

    case 'drain-error':
      return DRAIN_ERROR(s)

    case 'drain-data':
      // the peer still sends to a socket its user has left: reset it, as a plain close would
      return DRAIN_DATA(s)

    case 'connect-done':
      // Dissolved before; if the connect won the race, dissolving again resets it.
      return event.failed ? CONNECT_DONE.failed(s) : CONNECT_DONE.won(s)

    case 'attempt-failed':
      return event.hasFd ? CONNECT.failed : CONNECT.noSocket

    case 'never-connected':
      if (s !== 'connecting') return STAY(s)
      return event.hasFd ? CONNECT.unusedFd : CONNECT.unusedNoSocket
  }
}

const KERNEL_FIN_WAIT = new Map<string, ReleaseStep>()
function kernelFinWait(s: FdState, tcp: number): ReleaseStep {
  const key = `${s}/${tcp}`
  let r = KERNEL_FIN_WAIT.get(key)
  if (!r) {
    // the timer is cleared first, so the drain starts drainTimeoutMs afresh
    r = drainFrom('fin-sent', false, false, FIN_FIRST, CLEAR_TIMER, move('fin-sent', `kernel: ${tcpStateName(tcp)}`))
    KERNEL_FIN_WAIT.set(key, r)
  }
  return r
}

const KERNEL_UNEXPECTED = new Map<string, ReleaseStep>()
function kernelUnexpected(s: FdState, tcp: number): ReleaseStep {
  const key = `${s}/${tcp}`
  let r = KERNEL_UNEXPECTED.get(key)
  if (!r) {
    r = row(s, dissolve(`unexpected ${tcpStateName(tcp)}`, true))
    KERNEL_UNEXPECTED.set(key, r)
  }
  return r
}
