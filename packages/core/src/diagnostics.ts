import diagnosticsChannel from 'node:diagnostics_channel'
import { debuglog } from 'node:util'

/** NODE_DEBUG=fdrecycle */
export const debug = debuglog('fdrecycle')
/**
 * `debug.enabled`, read once: NODE_DEBUG is read when the process starts, and the accessor is a
 * call through debuglog's closures at every state change.
 */
export const debugEnabled = debug.enabled

/**
 * diagnostics_channel channels, named `fdrecycle:<noun>:<verb>`. Messages are built only when a
 * channel has subscribers (the `hasSubscribers` check sits at every publish site).
 */
export const channels = {
  /** `{ fd, from, to, reason }` on every state change of a pooled fd */
  fdTransition: diagnosticsChannel.channel('fdrecycle:fd:transition'),
  /** `{ fd, family }` when the recycler takes ownership of a new fd */
  fdCreated: diagnosticsChannel.channel('fdrecycle:fd:created'),
  /** `{ fd, family, reason }` when an fd owned by the recycler is closed */
  fdClosed: diagnosticsChannel.channel('fdrecycle:fd:closed'),
  /** `{ socket, fd, reused }` when a socket takes an fd to connect */
  socketAcquired: diagnosticsChannel.channel('fdrecycle:socket:acquired'),
  /**
   * `{ fd, state, error }` when a socket's user is done with it and the fd goes to the release
   * protocol: `state` is the fd's state then, `error` what the socket was destroyed with (or null)
   */
  socketReleased: diagnosticsChannel.channel('fdrecycle:socket:released'),
  /** `{ fd, policy }` when a peer did not send EOF within drainTimeoutMs */
  drainTimedOut: diagnosticsChannel.channel('fdrecycle:drain:timeout'),
  /** `{ fd, error }` when a syscall on the release path failed and the fd was closed instead */
  releaseFailed: diagnosticsChannel.channel('fdrecycle:release:error'),
} as const
