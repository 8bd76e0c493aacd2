export { postgresSocket, type PostgresSocket, type PostgresSocketFactory, type PostgresSocketOptions } from './postgres-socket.js'
// The recycler comes from the core; re-exported so that one import serves postgres.js users (CommonJS too).
export { SocketRecycler, defaultRecycler, isRecyclingSupported, type RecyclerOptions, type RecyclerStats } from '@fdrecycle/core'
