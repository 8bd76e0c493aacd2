import net from 'node:net'

/**
 * net's normalizeArgs brands the arrays it returns with a private symbol, and `socket.connect()`
 * takes such an array as its arguments (`socket.connect(net._normalizeArgs(args))`, as net's own
 * createConnection does). The symbol is found once, from net._normalizeArgs; where Node has no
 * such function, nothing is taken for normalized.
 */
let normalizedArgsSymbol: symbol | null | undefined

/** Whether `value` came from net's normalizeArgs. */
export function isNormalizedArgs(value: unknown[]): boolean {
  if (normalizedArgsSymbol === undefined) {
    const normalize = (net as unknown as { _normalizeArgs?: (args: unknown[]) => unknown[] })._normalizeArgs
    normalizedArgsSymbol = (normalize && Object.getOwnPropertySymbols(normalize([]))[0]) ?? null
  }
  return normalizedArgsSymbol !== null && (value as unknown as Record<symbol, unknown>)[normalizedArgsSymbol] === true
}
