import type { TcpHandle } from './node.js'

/**
 * TCP#setNoDelay replaced on a pooled handle (an own property, the prototype untouched), so that a
 * call that would not change the kernel's TCP_NODELAY is not made: node:http's Agent asks for
 * NODELAY on every socket (net applies it after the connect), and a recycled fd whose last tenant
 * had it on still has it on. Every JS path to the option goes through the handle's method (net,
 * a TLS socket's proxied handle methods, the recycler's own reset), so the state kept here is the
 * kernel's; `resetSocketOptions: 'verify'` re-reads it for code that sets it on the fd directly.
 */
export interface NoDelayState {
  /** TCP_NODELAY as last set through the handle: 1 on, 0 off (a new socket's), -1 unknown. */
  noDelay: -1 | 0 | 1
  /** The hooked handle's kernel fd, -1 while it has none (a PooledFd's cached `fd`, no native call). */
  readonly fd: number
}

type SetNoDelay = TcpHandle['setNoDelay']

let protoSetNoDelay: SetNoDelay | undefined
const kState = Symbol('fdrecycle.noDelayState')

export function hookNoDelay(handle: TcpHandle, state: NoDelayState): void {
  protoSetNoDelay ??= (Object.getPrototypeOf(handle) as TcpHandle).setNoDelay
  handle[kState] = state
  handle.setNoDelay = trackedSetNoDelay
}

/** The hook back in place (a tenant may have replaced the method on its handle); the state stays. */
export function rehookNoDelay(handle: TcpHandle): void {
  if (handle[kState] !== undefined) handle.setNoDelay = trackedSetNoDelay
}

function trackedSetNoDelay(this: TcpHandle, enable: boolean): number {
  const state = this[kState] as NoDelayState
  const on = enable ? 1 : 0
  // no fd yet: libuv only records the wish, for the socket it makes at connect
  if (state.noDelay === on && state.fd >= 0) return 0
  const ret = protoSetNoDelay!.call(this, enable)
  state.noDelay = ret === 0 && state.fd >= 0 ? on : -1
  return ret
}
