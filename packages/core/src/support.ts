import { loadLibc } from './ffi/libc.js'
import { nodeInternals } from './internals/node.js'
import { probeRoundTrip } from './internals/probe.js'
import { installConnectHooks } from './pooled-fd.js'

export interface RecyclingSupport {
  readonly supported: boolean
  /** Why not, when not supported. */
  readonly reason?: string
  readonly error?: Error
}

/** The Node majors CI runs the whole suite on; recycling relies on their net internals. */
export const TESTED_NODE_MAJORS: readonly number[] = Object.freeze([20, 22, 24, 26])

/** Set to `1` to recycle on a Node major CI has not tested (the probe still has to pass). */
export const UNTESTED_NODE_ENV = 'FDRECYCLE_UNTESTED_NODE'

/**
 * Whether this library may recycle on Node `version` (e.g. `'27.1.0'`): a tested major, or any
 * major with FDRECYCLE_UNTESTED_NODE=1. A reason string when it may not.
 */
export function untestedNodeReason(version: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const major = Number.parseInt(version.replace(/^v/, ''), 10)
  if (TESTED_NODE_MAJORS.includes(major)) return undefined
  if (env[UNTESTED_NODE_ENV] === '1') return undefined
  return `Node ${version} is not a major fdrecycle is tested on (${TESTED_NODE_MAJORS.join(', ')}); ` +
    `sockets are plain. Set ${UNTESTED_NODE_ENV}=1 to recycle anyway.`
}

export interface SupportInputs {
  readonly platform: string
  readonly nodeVersion: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly emitWarning: (message: string, options: { code: string }) => void
  /** koffi, Node's internals by reflection, then the loopback round trip; throws on any surprise */
  readonly probe: () => void
}

/** The decision behind recyclingSupport(), with its inputs injectable (tests pass another Node version). */
export function decideSupport(inputs: SupportInputs): RecyclingSupport {
  if (inputs.env.FDRECYCLE_DISABLE === '1') {
    return Object.freeze({ supported: false, reason: 'disabled by FDRECYCLE_DISABLE=1' })
  }
  if (inputs.platform === 'linux') {
    const untested = untestedNodeReason(inputs.nodeVersion, inputs.env)
    if (untested) {
      inputs.emitWarning(untested, { code: 'FDRECYCLE_UNTESTED_NODE' })
      return Object.freeze({ supported: false, reason: untested })
    }
  }
  try {
    inputs.probe()
    return Object.freeze({ supported: true })
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err))
    return Object.freeze({ supported: false, reason: error.message, error })
  }
}

function probe(): void {
  loadLibc()
  const internals = nodeInternals()
  installConnectHooks(internals.tcpPrototype.connect, internals.tcpPrototype.connect6)
  probeRoundTrip()
}

let support: RecyclingSupport | undefined

/**
 * Decides once per process, at first use: Linux, a Node major CI has tested (else one
 * `FDRECYCLE_UNTESTED_NODE` warning and plain sockets, unless FDRECYCLE_UNTESTED_NODE=1), koffi
 * loads libc, Node's net internals are where this library expects them, and one real connect /
 * release / reuse round trip on loopback behaves (internals/probe.ts). `FDRECYCLE_DISABLE=1`
 * forces the plain-socket fallback (for tests and for switching recycling off without a code change).
 */
export function recyclingSupport(): RecyclingSupport {
  support ??= decideSupport({
    platform: process.platform,
    nodeVersion: process.versions.node,
    env: process.env,
    emitWarning: (message, options) => process.emitWarning(message, options),
    probe,
  })
  return support
}

/** Whether this process can recycle sockets; where it cannot, every recycler hands out plain sockets. */
export function isRecyclingSupported(): boolean {
  return recyclingSupport().supported
}
