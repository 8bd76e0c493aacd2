export { RecycledConnector, recycledConnector, type ConnectorOptions, type RecycledConnectorOptions, type RedisConnectorConstructor, type RedisStream } from './recycled-connector.js'
// The recycler comes from the core; re-exported so that one import serves ioredis users (CommonJS too).
export { SocketRecycler, defaultRecycler, isRecyclingSupported, type RecyclerOptions, type RecyclerStats } from '@fdrecycle/core'
