export { SocketRecycler, defaultRecycler, configureDefaultRecycler, type RecyclerStats, type RecycledConnectOpts, type RecycledSocketOptions } from './recycler.js'
export { RecycledSocket } from './recycled-socket.js'
export { isRecyclingSupported, recyclingSupport, TESTED_NODE_MAJORS, type RecyclingSupport } from './support.js'
export { observeWrites } from './internals/write-observer.js'
export { tlsConnectOverSocket, withHandleHidden } from './internals/tls-over-socket.js'
export { DEFAULT_OPTIONS, validateOptions, type RecyclerOptions, type ResolvedRecyclerOptions, type DrainTimeoutPolicy } from './options.js'
export {
  FdRecycleError, InvalidOptionError, InvalidArgumentError, RecyclerClosedError, AcquireTimeoutError, UnsupportedError,
  ErrorCodes, isFdRecycleError, type ErrorCode,
} from './errors.js'
export { channels } from './diagnostics.js'
export { TRANSITIONS, type FdState } from './lifecycle.js'
export { TcpState, tcpStateName } from './ffi/tcp-info.js'
