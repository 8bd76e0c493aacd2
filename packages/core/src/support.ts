import { loadLibc } from './ffi/libc.js'
import { nodeInternals } from './internals/node.js'
import { installConnectHooks } from './pooled-fd.js'

export interface RecyclingSupport {
  readonly supported: boolean
  /** Why not, when not supported. */
  readonly reason?: string
  readonly error?: Error
}

let support: RecyclingSupport | undefined

/**
 * Probes once per process: Linux, koffi loads libc, Node's net internals are where this library
 * expects them, and AF_UNSPEC on a fresh socket succeeds. `FDRECYCLE_DISABLE=1` forces the
 * plain-socket fallback (for tests and for switching recycling off without a code change).
 */
export function recyclingSupport(): RecyclingSupport {
  if (support) return support
  if (process.env.FDRECYCLE_DISABLE === '1') {
    support = Object.freeze({ supported: false, reason: 'disabled by FDRECYCLE_DISABLE=1' })
    return support
  }
  try {
    loadLibc()
    const internals = nodeInternals()
    installConnectHooks(internals.tcpPrototype.connect, internals.tcpPrototype.connect6)
    support = Object.freeze({ supported: true })
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err))
    support = Object.freeze({ supported: false, reason: error.message, error })
  }
  return support
}

/** Whether this process can recycle sockets; where it cannot, every recycler hands out plain sockets. */
export function isRecyclingSupported(): boolean {
  return recyclingSupport().supported
}
