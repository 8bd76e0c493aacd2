import dns from 'node:dns'
import net from 'node:net'
import { isNormalizedArgs } from './internals/normalized-args.js'

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
  if (Array.isArray(first) && isNormalizedArgs(first)) {
    // socket.connect(net._normalizeArgs(...)): already [options, listener], as net accepts it
    const listener = first[1] as unknown
    return { options: (first[0] ?? {}) as NormalizedConnect['options'], listener: typeof listener === 'function' ? (listener as ConnectListener) : null }
  }
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

/**
 * net.Socket as this module found it: code that routes `net.Socket` through a recycler (a preload,
 * an instrumentation) must not send the throwaway socket below back here.
 */
const NetSocket = net.Socket

/**
 * The error net.Socket#connect throws for these options, made by net itself on a throwaway socket
 * (so the code and message are those of the running Node version), or null if net accepts them.
 * Only called once a check below has failed: never on the way to a connection. The probe gets no
 * lookup call and no connect: a valid lookup is swapped for one that does nothing, and the probe
 * is destroyed before the tick on which net would connect it.
 */
export function netConnectError(options: Record<string, unknown>): Error | null {
  const probe = new NetSocket()
  const lookup = typeof options.lookup === 'function' ? () => {} : options.lookup
  try {
    probe.connect({ ...options, lookup, signal: undefined } as net.NetConnectOpts)
    return null
  } catch (err) {
    return err as Error
  } finally {
    probe.destroy()
  }
}

function rejected(options: Record<string, unknown>, fallback: () => Error): Error {
  return netConnectError(options) ?? fallback()
}

/**
 * The checks net.Socket#connect and lookupAndConnect make before connecting (port, autoSelectFamily,
 * autoSelectFamilyAttemptTimeout, lookup), with net's own errors. Returns the port as a number.
 */
export function validateConnectOptions(options: Record<string, unknown>, isIp: boolean): number {
  const port = options.port
  if (port === undefined && options.path == null) {
    throw nodeError(TypeError, 'ERR_MISSING_ARGS', 'The "options" or "port" or "path" argument must be specified')
  }
  if (typeof port !== 'number' && typeof port !== 'string') {
    throw rejected(options, () => nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "options.port" property must be of type number or string`))
  }
  const n = typeof port === 'string' ? (port.trim() === '' ? NaN : Number(port)) : port
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) {
    throw rejected(options, () => nodeError(RangeError, 'ERR_SOCKET_BAD_PORT', `Port should be >= 0 and < 65536. Received ${String(port)}.`))
  }
  const { autoSelectFamily, autoSelectFamilyAttemptTimeout: attemptTimeout, lookup } = options
  if (autoSelectFamily != null && typeof autoSelectFamily !== 'boolean') {
    throw rejected(options, () => nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "options.autoSelectFamily" property must be of type boolean'))
  }
  if (attemptTimeout != null && !(Number.isInteger(attemptTimeout) && (attemptTimeout as number) >= 1 && (attemptTimeout as number) <= 0x7fffffff)) {
    throw rejected(options, () => nodeError(RangeError, 'ERR_OUT_OF_RANGE', 'The value of "options.autoSelectFamilyAttemptTimeout" is out of range'))
  }
  // net checks the lookup only where it would call it: not for an IP literal
  if (!isIp && lookup != null && typeof lookup !== 'function') {
    throw rejected(options, () => nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "options.lookup" property must be of type function'))
  }
  return n
}

/** net's ERR_INVALID_IP_ADDRESS, for a lookup that answered something that is no IP address. */
export function invalidIpAddress(address: unknown): Error {
  return nodeError(TypeError, 'ERR_INVALID_IP_ADDRESS', `Invalid IP address: ${String(address)}`)
}

/** net's ERR_INVALID_ADDRESS_FAMILY, for a lookup that answered a family other than 4 or 6. */
export function invalidAddressFamily(family: unknown, host: unknown, port: unknown): Error {
  return Object.assign(nodeError(RangeError, 'ERR_INVALID_ADDRESS_FAMILY', `Invalid address family: ${String(family)} ${String(host)}:${String(port)}`), { host, port })
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
