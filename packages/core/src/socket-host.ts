import type net from 'node:net'
import { channels } from './diagnostics.js'
import { RecyclerClosedError } from './errors.js'
import { resetReading } from './internals/node.js'
import { closePooled } from './pool-hooks.js'
import { Dirty, type PooledFd } from './pooled-fd.js'
import { releaseStep } from './release/executor.js'
import type { ReleaseEvent } from './release/protocol.js'
import type { RecyclerState } from './recycler-state.js'
import { rehandle } from './rehandle.js'
import { resetTenantOptions } from './tenant-options.js'

/** What a socket reports to its recycler when its user lets go of it. */
export interface TenantExit {
  /** libuv had a connect request in flight (the tenant left while connecting) */
  connectInFlight: boolean
  /** resetAndDestroy(), or destroy() with bytes from the peer unread: an RST, as a plain close sends */
  reset: boolean
  /** the socket saw the peer's EOF itself (not through TLS) */
  sawEof: boolean
  /** the kernel holds the peer's FIN, nothing unread before it (recv MSG_PEEK at destroy) */
  peerFinIn: boolean
  /** that look met an error instead (a reset): the connection is gone */
  gone: boolean
  /** a TLS socket had wrapped this socket's handle (tls.connect({ socket })) */
  tls: boolean
  error: Error | null
  dirty: number
}

/**
 * The recycler as its sockets see it. Internal: a SocketRecycler hands one to each RecycledSocket
 * it makes; none of these methods is on SocketRecycler's public type.
 */
export interface SocketHost {
  readonly recycling: boolean
  readonly closed: boolean
  /** An fd that can be lent right now, if any (no promise round trip). */
  acquireNow(family: 4 | 6): PooledFd | undefined
  acquire(family: 4 | 6): Promise<PooledFd>
  /** A lent fd-less handle takes the family of the address it will connect to; false if it cannot. */
  refamily(pooled: PooledFd, family: 4 | 6): boolean
  giveBack(pooled: PooledFd): void
  /**
   * The socket lets go of an fd it took at connect() before issuing any connect on it (destroyed
   * during the lookup, or the lookup chose the other family): back to the pool as lent, or closed
   * if a TLS socket wrapped its handle meanwhile.
   */
  unused(pooled: PooledFd, tls: boolean, dirty: number): void
  /** Takes the fd for this socket; false if the fd had to be closed instead (acquire another). */
  checkout(pooled: PooledFd, socket: net.Socket, wanted: number): boolean
  connected(pooled: PooledFd): void
  tenantEnded(pooled: PooledFd): void
  peerEnded(pooled: PooledFd): void
  tenantLeft(pooled: PooledFd, exit: TenantExit): void
  /** The tenant left before the peer's EOF, nothing else in the way: drain now, the handle still reading. */
  tenantLeftDraining(pooled: PooledFd, exit: TenantExit): void
  /** A failed attempt of a multi-address connect: the fd is settled, the socket tries the next address. */
  attemptFailed(pooled: PooledFd): void
  plainOpened(socket: net.Socket): void
  plainClosed(socket: net.Socket): void
}

const TENANT_ENDED: ReleaseEvent = Object.freeze({ kind: 'tenant-ended' })
const PEER_EOF: ReleaseEvent = Object.freeze({ kind: 'peer-eof' })
const ATTEMPT_FAILED_FD: ReleaseEvent = Object.freeze({ kind: 'attempt-failed', hasFd: true })
const ATTEMPT_FAILED_NO_FD: ReleaseEvent = Object.freeze({ kind: 'attempt-failed', hasFd: false })
const UNUSED_FD: ReleaseEvent = Object.freeze({ kind: 'never-connected', hasFd: true })
const UNUSED_NO_FD: ReleaseEvent = Object.freeze({ kind: 'never-connected', hasFd: false })
/** tenant-left events by their eight flags: no object per release. */
const LEFT_EVENTS: ReleaseEvent[] = Array.from({ length: 256 }, (_, i) =>
  Object.freeze({
    kind: 'tenant-left',
    connectInFlight: (i & 1) !== 0,
    reset: (i & 2) !== 0,
    sawEof: (i & 4) !== 0,
    tls: (i & 8) !== 0,
    error: (i & 16) !== 0,
    hasFd: (i & 32) !== 0,
    peerFinIn: (i & 64) !== 0,
    gone: (i & 128) !== 0,
  }),
)

function leftEvent(exit: TenantExit, hasFd: boolean): ReleaseEvent {
  return LEFT_EVENTS[
    (exit.connectInFlight ? 1 : 0) | (exit.reset ? 2 : 0) | (exit.sawEof ? 4 : 0) | (exit.tls ? 8 : 0) |
      (exit.error ? 16 : 0) | (hasFd ? 32 : 0) | (exit.peerFinIn ? 64 : 0) | (exit.gone ? 128 : 0)
  ]!
}

/** The host the sockets of the recycler owning `r` call. */
export function createSocketHost(r: RecyclerState): SocketHost {
  return {
    get recycling() {
      return r.mode === 'recycling'
    },
    get closed() {
      return r.closed
    },
    acquireNow: (family) => acquireNow(r, family),
    acquire: (family) => acquire(r, family),
    refamily: (pooled, family) => r.pool !== null && r.pool.refamily(pooled, family),
    giveBack: (pooled) => giveBack(r, pooled),
    unused: (pooled, tls, dirty) => unused(r, pooled, tls, dirty),
    checkout: (pooled, socket, wanted) => checkout(r, pooled, socket, wanted),
    connected,
    tenantEnded: (pooled) => releaseStep(r, pooled, TENANT_ENDED),
    peerEnded: (pooled) => releaseStep(r, pooled, PEER_EOF),
    tenantLeft: (pooled, exit) => tenantLeft(r, pooled, exit),
    tenantLeftDraining: (pooled, exit) => tenantLeftDraining(r, pooled, exit),
    attemptFailed: (pooled) => {
      r.active.delete(pooled)
      releaseStep(r, pooled, pooled.fd >= 0 ? ATTEMPT_FAILED_FD : ATTEMPT_FAILED_NO_FD)
    },
    // A plain-path socket's fd counts as created and closed in every mode (it is in `active` while
    // open), so that fdsCreated - fdsClosed == idle + active + draining always holds.
    plainOpened: (socket) => {
      r.counters.connections++
      r.counters.fdsCreated++
      r.plain.add(socket)
    },
    plainClosed: (socket) => {
      if (!r.plain.delete(socket)) return
      r.counters.fdsClosed++
      r.settled()
    },
  }
}

function acquireNow(r: RecyclerState, family: 4 | 6): PooledFd | undefined {
  if (r.closed || !r.pool) return undefined
  return r.pool.acquireNow(family)
}

function acquire(r: RecyclerState, family: 4 | 6): Promise<PooledFd> {
  if (r.closed || !r.pool) return Promise.reject(new RecyclerClosedError())
  return r.pool.acquire(family)
}

function giveBack(r: RecyclerState, pooled: PooledFd): void {
  if (r.closed) return closePooled(r, pooled, 'recycler closed')
  if (pooled.state === 'fresh' || pooled.state === 'idle') r.pool!.release(pooled)
  else closePooled(r, pooled, `unexpected state ${pooled.state} on give-back`)
}

function checkout(r: RecyclerState, pooled: PooledFd, socket: net.Socket, wanted: number): boolean {
  const own = (socket as { finDelayMs?: number | undefined }).finDelayMs
  pooled.finDelayMs = own ?? r.options.finDelayMs
  // release policy: the adaptive wait unless the socket has a finDelayMs of its own
  pooled.adaptive = r.policy !== null && own === undefined
  pooled.endedAt = 0
  pooled.withheldMs = 0
  // Options the last tenant changed are reset here rather than at its release, and only those
  // this tenant does not set again itself: node:http's Agent asks for NODELAY and KEEPALIVE on
  // every socket, and resetting them in between would cost five setsockopt calls per connection.
  try {
    resetTenantOptions(pooled, wanted, r.options.resetSocketOptions === 'verify')
  } catch (err) {
    r.releaseFailed(pooled, err)
    closePooled(r, pooled, 'socket option reset failed')
    return false
  }
  pooled.setState('connecting', 'checkout')
  pooled.connectPending = false
  pooled.handle.ref()
  r.active.add(pooled)
  r.counters.connections++
  if (pooled.uses > 0) r.counters.reusedConnections++
  if (channels.socketAcquired.hasSubscribers) channels.socketAcquired.publish({ socket, fd: pooled, reused: pooled.uses > 0 })
  return true
}

function unused(r: RecyclerState, pooled: PooledFd, tls: boolean, dirty: number): void {
  r.active.delete(pooled)
  pooled.dirty |= dirty
  if (pooled.state === 'closed') return r.settled()
  if (r.closed) return closePooled(r, pooled, 'recycler closed')
  // TLSWrap holds the handle as its stream: it goes with that TLS socket, as net's would
  if (tls) return closePooled(r, pooled, 'wrapped by TLS before its connect')
  releaseStep(r, pooled, pooled.fd >= 0 ? UNUSED_FD : UNUSED_NO_FD)
}

function connected(pooled: PooledFd): void {
  pooled.connectPending = false
  if (pooled.state === 'connecting') pooled.setState('open', 'connected')
}

function tenantLeft(r: RecyclerState, pooled: PooledFd, exit: TenantExit): void {
  r.active.delete(pooled)
  pooled.dirty |= exit.dirty
  if (pooled.state === 'closed') return r.settled()
  // After close() nothing is drained or reused: the fd is closed (a plain close: FIN or RST).
  if (r.closed) return closePooled(r, pooled, 'recycler closed')
  if (channels.socketReleased.hasSubscribers) {
    channels.socketReleased.publish({ fd: pooled, state: pooled.state, error: exit.error })
  }
  // A TLS tenant wraps the handle itself (TLSWrap in C++): its end() shut the libuv handle for
  // good (UV_HANDLE_SHUT) and it left an accessor on `reading`. The socket moves to a new handle.
  if (exit.tls) {
    // TLSSocket#setNoDelay/setKeepAlive go straight to the TCP handle, past our tracking.
    pooled.dirty |= Dirty.NODELAY | Dirty.KEEPALIVE | Dirty.TOS | Dirty.LINGER
    if (!rehandle(r, pooled)) return
    // (the tenant reset a plain handle's flag itself)
    if (!resetReading(pooled.handle)) return closePooled(r, pooled, 'handle.reading left non-configurable')
  }
  // A write still queued in libuv would go out on the next connection: never reuse such a handle.
  if (pooled.handle.writeQueueSize > 0) return closePooled(r, pooled, 'writes still queued in libuv at destroy')
  releaseStep(r, pooled, leftEvent(exit, pooled.fd >= 0))
}

function tenantLeftDraining(r: RecyclerState, pooled: PooledFd, exit: TenantExit): void {
  r.active.delete(pooled)
  pooled.dirty |= exit.dirty
  if (r.closed) {
    pooled.handle.readStop()
    return closePooled(r, pooled, 'recycler closed')
  }
  if (channels.socketReleased.hasSubscribers) {
    channels.socketReleased.publish({ fd: pooled, state: pooled.state, error: null })
  }
  // the socket checked it: no TLS, no error, no reset, no EOF, no connect in flight
  releaseStep(r, pooled, leftEvent(exit, true))
}
