export { pgStream, type PgStreamConfig, type PgStreamFactory } from './pg-stream.js'
// The recycler comes from the core; re-exported so that one import serves pg users (CommonJS too).
export { SocketRecycler, defaultRecycler, isRecyclingSupported, type RecyclerOptions, type RecyclerStats } from '@fdrecycle/core'
