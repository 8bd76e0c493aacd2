export { mysqlStream, type MysqlStreamConfig, type MysqlStreamFactory } from './mysql-stream.js'
// The recycler comes from the core; re-exported so that one import serves mysql2 users (CommonJS too).
export { SocketRecycler, defaultRecycler, isRecyclingSupported, type RecyclerOptions, type RecyclerStats } from '@fdrecycle/core'
