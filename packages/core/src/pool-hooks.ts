import { channels, debug } from './diagnostics.js'
import type { FdPoolHooks, Validity } from './fd-pool.js'
import { closeFd, dissolve, openTcpSocket, takeSocketError, tcpState } from './ffi/syscalls.js'
import { TcpState, disconnectSendsReset } from './ffi/tcp-info.js'
import { nodeInternals } from './internals/node.js'
import { PooledFd } from './pooled-fd.js'
import type { RecyclerState } from './recycler-state.js'

/** What the fd pool calls back into: make an fd, close one, ready one on borrow. */
export function poolHooks(r: RecyclerState): FdPoolHooks {
  return {
    create: (family, prewarm) => createFd(r, family, prewarm),
    destroy: (pooled) => destroyFd(r, pooled),
    validate: (pooled) => validateOnBorrow(r, pooled),
  }
}

/** Closes the fd (through the pool, which forgets it, when there is one); `reason` goes to fdClosed. */
export function closePooled(r: RecyclerState, pooled: PooledFd, reason: string): void {
  r.closeReasons.set(pooled, reason)
  r.withholding.delete(pooled)
  if (r.pool) r.pool.destroy(pooled)
  else destroyFd(r, pooled)
}

function createFd(r: RecyclerState, family: 4 | 6, prewarm: boolean): PooledFd {
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
  r.counters.fdsCreated++
  if (channels.fdCreated.hasSubscribers) channels.fdCreated.publish({ fd: pooled, family })
  return pooled
}

/** The only place an fd is closed. */
function destroyFd(r: RecyclerState, pooled: PooledFd): void {
  if (pooled.state === 'closed') return
  const reason = r.closeReasons.get(pooled) ?? 'evicted'
  pooled.clearTimer()
  const drain = r.draining.get(pooled)
  if (drain) drain.abandon()
  r.draining.delete(pooled)
  r.active.delete(pooled)
  void pooled.fd // records the fd number for the log line before close() makes it -1
  pooled.setState('closed', reason)
  pooled.handle.close()
  r.counters.fdsClosed++
  if (channels.fdClosed.hasSubscribers) channels.fdClosed.publish({ fd: pooled, family: pooled.family, reason })
  r.settled()
}

/**
 * Validation on borrow. A parked fd is dissolved only once the kernel says CLOSE: in LAST_ACK our
 * FIN is not acknowledged yet, and may have been lost; dissolving then would stop its
 * retransmission (the peer would wait in FIN_WAIT2, or meet an RST when it resends its own FIN),
 * and even a last ACK merely late would draw an RST. Such an fd is lent later
 * (test/faults: "our FIN lost after the peer closed first").
 */
function validateOnBorrow(r: RecyclerState, pooled: PooledFd): Validity {
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
          if (disconnectSendsReset(state)) r.counters.resetsSent++
          takeSocketError(pooled.fd)
        }
        pooled.setState('idle', 'dissolved at checkout')
        return 'ok'
      } catch (err) {
        r.releaseFailed(pooled, err)
        return 'bad'
      }
    default:
      return 'bad'
  }
}
