import dns from 'node:dns'
import net from 'node:net'

export type ConnectListener = () => void

export interface NormalizedConnect {
  options: net.NetConnectOpts & Record<string, unknown>
  listener: ConnectListener | null
}

/**
 * net's normalizeArgs: connect(options[, cb]), connect(path[, cb]), connect(port[, host][, cb]).
 * A string that is not a number is a pipe path, as in Node.
 */
export function normalizeConnectArgs(args: readonly unknown[]): NormalizedConnect {
  if (args.length === 0) return { options: {} as NormalizedConnect['options'], listener: null }
  const first = args[0]
  let options: Record<string, unknown>
  if (typeof first === 'object' && first !== null) {
    options = first as Record<string, unknown>
  } else if (typeof first === 'string' && !isNumeric(first)) {
    options = { path: first }
  } else {
    options = { port: first }
    if (args.length > 1 && typeof args[1] === 'string') options.host = args[1]
  }
  const last = args[args.length - 1]
  return { options: options as NormalizedConnect['options'], listener: typeof last === 'function' ? (last as ConnectListener) : null }
}

function isNumeric(value: string): boolean {
  return value.trim() !== '' && Number.isFinite(Number(value))
}

type NodeError = Error & { code: string }

function nodeError<E extends Error>(Base: new (message: string) => E, code: string, message: string): E & NodeError {
  const err = new Base(message) as E & NodeError
  err.code = code
  return err
}

function received(value: unknown): string {
  if (typeof value === 'string') return `type string ('${value}')`
  if (typeof value === 'number') return `type number (${value})`
  return `type ${typeof value} (${String(value)})`
}

/** The same checks and errors as net.Socket#connect (ERR_MISSING_ARGS, ERR_INVALID_ARG_TYPE, ERR_SOCKET_BAD_PORT). */
export function validateConnectPort(options: Record<string, unknown>): number {
  const port = options.port
  if (port === undefined && options.path == null) {
    throw nodeError(TypeError, 'ERR_MISSING_ARGS', 'The "options" or "port" or "path" argument must be specified')
  }
  if (typeof port !== 'number' && typeof port !== 'string') {
    throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "options.port" property must be one of type number or string. Received ${received(port)}`)
  }
  const n = typeof port === 'string' ? (port.trim() === '' ? NaN : Number(port)) : port
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) {
    throw nodeError(RangeError, 'ERR_SOCKET_BAD_PORT', `Port should be >= 0 and < 65536. Received ${received(port)}.`)
  }
  return n
}

export interface Destination {
  address: string
  family: 4 | 6
}

/** Options passed to the lookup function, as lookupAndConnect builds them. */
export function dnsOptions(options: Record<string, unknown>): dns.LookupOptions {
  const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family as number | undefined) ?? 0
  const hints = (options.hints as number | undefined) || 0
  return {
    family,
    hints: family !== 4 && family !== 6 && hints === 0 ? dns.ADDRCONFIG : hints,
  }
}

/**
 * Happy Eyeballs order (lookupAndConnectMultiple): deduplicated, families alternating, starting
 * with the family of the first address.
 */
export function interleaveFamilies(addresses: readonly dns.LookupAddress[]): Destination[] {
  const groups: [Destination[], Destination[]] = [[], []]
  let first: 4 | 6 | undefined
  const seen = new Set<string>()
  for (const { address, family } of addresses) {
    if ((family !== 4 && family !== 6) || net.isIP(address) !== family || seen.has(address)) continue
    seen.add(address)
    first ??= family
    groups[family === first ? 0 : 1].push({ address, family })
  }
  const out: Destination[] = []
  for (let i = 0; i < Math.max(groups[0].length, groups[1].length); i++) {
    if (groups[0][i]) out.push(groups[0][i]!)
    if (groups[1][i]) out.push(groups[1][i]!)
  }
  return out
}
