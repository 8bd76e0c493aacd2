import type net from 'node:net'
import { inject } from 'vitest'
import type { MariaDbTestServer } from '../../../test/setup/mariadb.js'

// The ss, polling and error-shape helpers of the pg adapter's suite serve this one unchanged.
export { clientTimeWaits, errorShape, released, serverTimeWaits, until } from '../../pg-adapter/test/helpers.js'
export { fdCount, openSockets, socketsSince, fdOf, socketInode } from '../../../test/helpers/system.js'
export { expectRecycled, recyclingSupported } from '../../../test/helpers/run-mode.js'

/** The server that test/setup/mariadb.ts started for this run. */
export function server(): MariaDbTestServer {
  return inject('mariadb')
}

/** Connection options for the test user over TCP. */
export function tcpConfig(host = '127.0.0.1'): { host: string; port: number; user: string; password: string; database: string } {
  const { port, user, password, database } = server()
  return { host, port, user, password, database }
}

/**
 * The TCP socket under a mysql2 connection (callback or promise API): its `stream`, or under TLS
 * the socket that `tls.connect({ socket })` wrapped (kept as `_parent`).
 */
export function tcpSocketOf(connection: object): net.Socket {
  const core = (connection as { connection?: object }).connection ?? connection
  const stream = (core as { stream: net.Socket & { _parent?: net.Socket } }).stream
  return stream._parent ?? stream
}

/** "localPort->remotePort" of a connected connection: its 4-tuple on loopback. */
export function tupleOf(connection: object): string {
  const socket = tcpSocketOf(connection)
  return `${socket.localPort}->${socket.remotePort}`
}
