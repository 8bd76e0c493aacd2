import { channels, debug, debugEnabled } from '../diagnostics.js'
import { startDrain, type Drain, type DrainOutcome } from '../drain-socket.js'
import { drainsOverBudget } from '../drain-budget.js'
import { dissolve, shutdownWrite, takeSocketError, tcpRttUs, tcpState } from '../ffi/syscalls.js'
import { TcpState, disconnectSendsReset } from '../ffi/tcp-info.js'
import { Dirty, type PooledFd } from '../pooled-fd.js'
import { closePooled } from '../pool-hooks.js'
import type { RecyclerState } from '../recycler-state.js'
import { step, type ReleaseAction, type ReleaseContext, type ReleaseEvent } from './protocol.js'

/**
 * Carries out the release protocol's steps (protocol.ts) on a real fd: the only code that sends
 * our FIN, starts the protocol's timers, hands an fd to a drain, and returns it to the pool.
 */

const TIMER: ReleaseEvent = Object.freeze({ kind: 'timer', peerFinIn: false })
const TIMER_PEER_FIN_IN: ReleaseEvent = Object.freeze({ kind: 'timer', peerFinIn: true })
const DRAIN_EOF: ReleaseEvent = Object.freeze({ kind: 'drain-eof' })
const DRAIN_ERROR: ReleaseEvent = Object.freeze({ kind: 'drain-error' })
const DRAIN_DATA: ReleaseEvent = Object.freeze({ kind: 'drain-data' })
const CONNECT_WON: ReleaseEvent = Object.freeze({ kind: 'connect-done', failed: false })
const CONNECT_FAILED: ReleaseEvent = Object.freeze({ kind: 'connect-done', failed: true })

function contextOf(r: RecyclerState, pooled: PooledFd, event: ReleaseEvent): ReleaseContext {
  const ctx = r.releaseContext
  const state = pooled.state
  ctx.state = state
  ctx.draining = r.draining.has(pooled)
  ctx.timerArmed = pooled.timerArmed
  // The goodbye (the tenant ended or left, the peer still open): the release policy decides the wait now.
  if (pooled.adaptive && !ctx.timerArmed && (state === 'open' || state === 'awaiting-eof') && event.kind !== 'peer-eof') withhold(r, pooled)
  ctx.finDelayZero = pooled.finDelayMs === 0
  return ctx
}

// ---- the release policy (release-policy.ts): the adaptive finDelay --------------------------------

/** The tenant's goodbye: the policy's wait for this destination becomes this connection's finDelayMs. */
function withhold(r: RecyclerState, pooled: PooledFd): void {
  if (pooled.endedAt > 0 || !r.policy || pooled.destination === null) return
  pooled.endedAt = performance.now()
  pooled.withheldMs = r.policy.finDelay(pooled.destination)
  pooled.finDelayMs = pooled.withheldMs
}

/** Refilled for each observation (record() reads it synchronously): no object per connection. */
const observation: { peerClosedFirst: boolean; elapsedMs: number; withheldMs: number; rttMs: number | undefined } = {
  peerClosedFirst: false, elapsedMs: 0, withheldMs: 0, rttMs: undefined,
}

/** Tells the policy who closed first on this connection, once per connection. */
function observe(r: RecyclerState, pooled: PooledFd, peerClosedFirst: boolean): void {
  const policy = r.policy
  const destination = pooled.destination
  if (!pooled.adaptive || !policy || destination === null) return
  pooled.adaptive = false
  const elapsedMs = pooled.endedAt > 0 ? performance.now() - pooled.endedAt : 0
  let rttMs: number | undefined
  // the socket still holds its RTT here (tcp_disconnect clears it); read now and then only
  if (peerClosedFirst && policy.wantsRtt(destination)) {
    try {
      rttMs = tcpRttUs(pooled.fd) / 1000
    } catch {
      // an RTT is a refinement; the observation stands without it
    }
  }
  const o = observation
  o.peerClosedFirst = peerClosedFirst
  o.elapsedMs = elapsedMs
  o.withheldMs = pooled.withheldMs
  o.rttMs = rttMs
  policy.record(destination, o)
  if (debugEnabled) {
    debug('fd#%d %s: %s first after %d ms (withheld %d ms): %s', pooled.id, destination,
      peerClosedFirst ? 'peer closed' : 'our FIN', Math.round(elapsedMs), pooled.withheldMs, policy.verdict(destination))
  }
}

/**
 * maxDraining: past the cap, the oldest drains are closed the way a plain socket's destroy() would
 * (close(2): FIN now, or RST with unread data; the fd is not reused), so that fds held for peers
 * that never close cannot cause an EMFILE a plain client would not meet. True if `newest` went.
 */
function shedDrains(r: RecyclerState, newest: PooledFd): boolean {
  if (r.maxDraining === 0 || r.draining.size <= r.maxDraining) return false
  for (const oldest of drainsOverBudget(r.draining, r.maxDraining)) {
    r.draining.get(oldest)?.abandon()
    r.draining.delete(oldest)
    r.counters.drainsShed++
    if (oldest.state === 'awaiting-eof') r.counters.finSentFirst++
    closePooled(r, oldest, `maxDraining (${r.maxDraining}) reached`)
  }
  return !r.draining.has(newest)
}

/**
 * maxDraining also bounds the fds whose tenant has ended and whose FIN we withhold (they wait for a
 * peer that may close only after our FIN; a client that end()s without waiting for 'close' would
 * otherwise hold one fd per goodbye for finDelayMs where net holds it for a round trip). Counted
 * with the drains: a goodbye past the cap sends its FIN at once, as net's end() does, and says
 * nothing about its peer (the release policy does not learn from it). The FINs already withheld
 * keep their wait, so the destination's probes finish and the policy learns.
 */
function shedFinDelay(r: RecyclerState, pooled: PooledFd): void {
  if (r.withholding.size + r.draining.size <= r.maxDraining) return
  r.withholding.delete(pooled)
  pooled.clearTimer()
  pooled.adaptive = false
  r.counters.finDelaysShed++
  releaseStep(r, pooled, peerFinIn(pooled) ? TIMER_PEER_FIN_IN : TIMER)
}

/**
 * Steps the fd through `event` and carries out the actions in order. `detail` is appended to the
 * reason of a dissolve (a drain's error message).
 */
export function releaseStep(r: RecyclerState, pooled: PooledFd, event: ReleaseEvent, detail?: string, knownTcp = -1): void {
  const { actions } = step(contextOf(r, pooled, event), event)
  for (let i = 0; i < actions.length; i++) {
    if (!perform(r, pooled, actions[i]!, detail, knownTcp)) return
  }
}

/** One action; false when the fd left the protocol (closed after a failed syscall, or settled). */
function perform(r: RecyclerState, pooled: PooledFd, a: ReleaseAction, detail: string | undefined, knownTcp: number): boolean {
  switch (a.op) {
    case 'count':
      r.counters[a.counter]++
      if (a.counter === 'peerClosedFirst') observe(r, pooled, true)
      else if (a.counter === 'finSentFirst') observe(r, pooled, false)
      return true
    case 'clear-timer':
      pooled.clearTimer()
      r.withholding.delete(pooled)
      return true
    case 'fin':
      try {
        shutdownWrite(pooled.fd)
      } catch (err) {
        // ENOTCONN: an RST got here first. The release path will find the socket in CLOSE.
        debug('fd#%d shutdown failed: %s', pooled.id, (err as Error).message)
      }
      return true
    case 'move':
      pooled.setState(a.to, a.reason)
      return true
    case 'start-timer':
      startTimer(r, pooled, a.timer === 'drain' ? r.options.drainTimeoutMs : pooled.finDelayMs)
      if (a.timer === 'finDelay' && !r.draining.has(pooled) && r.maxDraining > 0) {
        r.withholding.add(pooled)
        shedFinDelay(r, pooled)
      }
      return true
    case 'drain':
      r.withholding.delete(pooled)
      r.draining.set(pooled, startDrain(pooled, false, r.onDrainReport))
      pooled.handle.unref()
      return !shedDrains(r, pooled)
    case 'abort-connect-and-drain': {
      // Dissolving a socket in SYN_SENT makes libuv complete the connect with an error; a
      // DrainSocket receives that callback, then the fd is idle.
      const fd = pooled.fd
      try {
        const state = tcpState(fd)
        dissolve(fd)
        if (disconnectSendsReset(state)) r.counters.resetsSent++
      } catch (err) {
        r.releaseFailed(pooled, err)
        closePooled(r, pooled, 'dissolve of an aborted connect failed')
        return false
      }
      r.draining.set(pooled, startDrain(pooled, true, r.onDrainReport))
      pooled.handle.unref()
      return !shedDrains(r, pooled)
    }
    case 'query-kernel': {
      let state: number
      try {
        state = tcpState(pooled.fd)
      } catch (err) {
        r.releaseFailed(pooled, err)
        closePooled(r, pooled, 'TCP_INFO failed')
        return false
      }
      releaseStep(r, pooled, { kind: 'kernel-state', tcp: state }, detail, state)
      return false
    }
    case 'drain-timed-out': {
      const policy = r.options.onDrainTimeout
      debug('fd#%d: no EOF within drainTimeoutMs (%d ms): %s', pooled.id, r.options.drainTimeoutMs, policy)
      if (channels.drainTimedOut.hasSubscribers) channels.drainTimedOut.publish({ fd: pooled, policy })
      r.draining.get(pooled)?.abandon()
      r.draining.delete(pooled)
      return true
    }
    case 'dissolve':
      dissolveAndRelease(r, pooled, detail === undefined ? a.reason : `${a.reason}: ${detail}`, a.knownTcp ? knownTcp : -1)
      return false
    case 'release':
      releaseToPool(r, pooled, a.to, a.reason)
      return false
    case 'close':
      closePooled(r, pooled, a.reason)
      return false
  }
}

/** A release timer's callback (RecyclerState#timers). */
export function timerFired(r: RecyclerState, pooled: PooledFd): void {
  r.withholding.delete(pooled)
  releaseStep(r, pooled, pooled.state === 'awaiting-eof' && peerFinIn(pooled) ? TIMER_PEER_FIN_IN : TIMER)
  // close() does not wait for a drain whose FIN is out
  r.settled()
}

/**
 * A busy event loop runs expired timers before the I/O that may carry the peer's EOF: if the
 * kernel already holds its FIN (CLOSE_WAIT), the peer closed first and ours leaves no TIME_WAIT.
 */
function peerFinIn(pooled: PooledFd): boolean {
  try {
    return tcpState(pooled.fd) === TcpState.CLOSE_WAIT
  } catch {
    return false
  }
}

/** A drain's report (RecyclerState#onDrainReport). */
export function drainReported(r: RecyclerState, drain: Drain, outcome: DrainOutcome): void {
  const pooled = drain.pooled
  r.draining.delete(pooled)
  r.counters.discardedBytes += drain.discardedBytes
  if (pooled.state === 'closed') return r.settled()
  switch (outcome.kind) {
    case 'eof':
      return releaseStep(r, pooled, DRAIN_EOF)
    case 'error':
      return releaseStep(r, pooled, DRAIN_ERROR, outcome.error.message)
    case 'data':
      return releaseStep(r, pooled, DRAIN_DATA)
    case 'connect-done':
      return releaseStep(r, pooled, outcome.error === null ? CONNECT_WON : CONNECT_FAILED)
  }
}

function startTimer(r: RecyclerState, pooled: PooledFd, ms: number): void {
  r.timers.arm(pooled, ms)
}

/** AF_UNSPEC now (RST where the state needs one), clear SO_ERROR, back to the pool. */
function dissolveAndRelease(r: RecyclerState, pooled: PooledFd, reason: string, knownState: number): void {
  pooled.clearTimer()
  const fd = pooled.fd
  if (fd >= 0) {
    try {
      const state = knownState >= 0 ? knownState : tcpState(fd)
      dissolve(fd)
      if (disconnectSendsReset(state)) r.counters.resetsSent++
      // tcp_disconnect leaves ECONNRESET in sk_err (and a reset seen but never read leaves its
      // own): read it once so that the next tenant starts with none.
      takeSocketError(fd)
    } catch (err) {
      r.releaseFailed(pooled, err)
      return closePooled(r, pooled, `dissolve failed (${reason})`)
    }
  }
  releaseToPool(r, pooled, fd >= 0 ? 'idle' : 'fresh', reason)
}

/** The last step of every successful release: limits checked, back to the pool. */
function releaseToPool(r: RecyclerState, pooled: PooledFd, to: 'idle' | 'parked' | 'fresh', reason: string): void {
  pooled.clearTimer()
  r.withholding.delete(pooled)
  r.active.delete(pooled)
  r.draining.delete(pooled)
  if (r.closed) return closePooled(r, pooled, 'recycler closed')
  if (r.options.maxReuses > 0 && pooled.uses >= r.options.maxReuses) {
    return closePooled(r, pooled, `maxReuses (${r.options.maxReuses}) reached`)
  }
  if (pooled.dirty & Dirty.BUFFERS) return closePooled(r, pooled, 'SO_SNDBUF/SO_RCVBUF locked by a tenant')
  pooled.setState(to, reason)
  pooled.handle.unref()
  r.counters.recycled++
  r.pool!.release(pooled)
  r.settled()
}
