import { defaultRecycler, InvalidOptionError, type SocketRecycler } from '@fdrecycle/core'

/** The option every adapter entry point shares. */
export interface RecyclerOption {
  /**
   * The recycler that lends this client its TCP sockets. One recycler can serve several agents
   * and connectors; its fds are shared between them.
   * @default defaultRecycler()
   */
  recycler?: SocketRecycler
}

/**
 * The recycler to use, or `InvalidOptionError` naming `recycler`. Duck-typed, not `instanceof`:
 * two installed copies of @fdrecycle/core must still work together.
 */
export function resolveRecycler(value: unknown): SocketRecycler {
  if (value === undefined) return defaultRecycler()
  const candidate = value as Partial<SocketRecycler> | null
  if (
    typeof candidate !== 'object' || candidate === null ||
    typeof candidate.createConnection !== 'function' || typeof candidate.stats !== 'function'
  ) {
    throw new InvalidOptionError('recycler', `expected a SocketRecycler from @fdrecycle/core, received ${describe(value)}`)
  }
  return candidate as SocketRecycler
}

/** Rejects `value` unless it is undefined, null or an integer in [min, max]. */
export function optionalInteger(name: string, value: unknown, min: number, max = 2 ** 31 - 1): void {
  if (value === undefined || value === null) return
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `expected an integer from ${min} to ${max}, received ${describe(value)}`)
  }
}

export function optionalBoolean(name: string, value: unknown): void {
  if (value === undefined || value === null || typeof value === 'boolean') return
  throw new InvalidOptionError(name, `expected a boolean, received ${describe(value)}`)
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return `the string '${value}'`
  if (typeof value === 'number') return `the number ${value}`
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`
}

/**
 * The keys of net.connect's options that decide where and how the TCP connection is made. The
 * socket under a TLS connection gets only these: what a plain tls.connect would pass to its own
 * net.Socket#connect.
 */
const TCP_CONNECT_KEYS = [
  'host', 'port', 'family', 'hints', 'lookup', 'localAddress', 'localPort', 'path',
  'autoSelectFamily', 'autoSelectFamilyAttemptTimeout',
] as const

export function tcpConnectOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of TCP_CONNECT_KEYS) {
    const value = options[key]
    if (value !== undefined && value !== null) out[key] = value
  }
  return out
}
