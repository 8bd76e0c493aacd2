import type { Duplex } from 'node:stream'
import { InvalidArgumentError, defaultRecycler, type RecycledSocket, type SocketRecycler } from '@fdrecycle/core'

/**
 * The fields of mysql2's resolved connection config (`ConnectionConfig`) that decide the socket.
 * mysql2 fills `host` ('localhost') and `port` (3306) before it calls the factory.
 */
export interface MysqlStreamConfig {
  host?: string
  port?: number
  socketPath?: string
  enableKeepAlive?: boolean
  keepAliveInitialDelay?: number
  [key: string]: unknown
}

/**
 * mysql2's `stream` option as a function: mysql2 calls it once per connection with `{ config }`
 * and uses what it returns as is (no connect(), no setNoDelay(), no keep-alive of its own).
 */
export type MysqlStreamFactory = (opts: { config: MysqlStreamConfig }) => Duplex

/**
 * A `stream` option for mysql2's `createConnection`, `createPool` and `createPoolCluster`
 * (callback and promise APIs) that runs TCP connections on recycled fds.
 *
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { mysqlStream } from '@fdrecycle/mysql-adapter'
 * const pool = mysql.createPool({ host, user, database, stream: mysqlStream(recycler) })
 * ```
 *
 * Each connection gets a recycled socket already connecting to `config.host`/`config.port` (or
 * the plain path for `socketPath`), with what mysql2 does to its own sockets and skips for a
 * custom stream: TCP_NODELAY, and SO_KEEPALIVE at 'connect' with `enableKeepAlive`. TLS (`ssl`)
 * is mysql2's own upgrade: `tls.connect({ socket })` over the recycled socket after the server's
 * greeting. `connectTimeout`, `changeUser` and errors are mysql2's own too.
 *
 * `end()` sends COM_QUIT, after which the server closes first: the fd is reused with no
 * TIME_WAIT here. `destroy()` sends nothing: our FIN waits the recycler's `finDelayMs` for a
 * server that will not close, then goes first (a TIME_WAIT here, as with a plain socket).
 *
 * @param recycler - the recycler that owns the fds; without one, `defaultRecycler()` is asked at
 *   each connection (so a default recycler closed at shutdown is replaced, not reused closed).
 * @throws InvalidArgumentError (`ERR_FDRECYCLE_INVALID_ARGUMENT`) if `recycler` is not a recycler.
 */
export function mysqlStream(recycler?: SocketRecycler): MysqlStreamFactory {
  // Duck-typed, not instanceof: two installed copies of @fdrecycle/core must work together.
  if (recycler !== undefined && (typeof recycler !== 'object' || recycler === null || typeof (recycler as { createConnection?: unknown }).createConnection !== 'function')) {
    throw new InvalidArgumentError(
      `mysqlStream(recycler) expects a SocketRecycler (new SocketRecycler() or defaultRecycler()) or nothing; received ${describe(recycler)}`,
    )
  }
  return ({ config }) => open(recycler ?? defaultRecycler(), config)
}

function open(recycler: SocketRecycler, config: MysqlStreamConfig): RecycledSocket {
  if (config.socketPath) return recycler.createConnection({ path: config.socketPath })
  const socket = recycler.createConnection({ host: config.host ?? 'localhost', port: config.port ?? 3306 })
  // What mysql2 does to the sockets it makes itself (lib/base/connection.js).
  socket.setNoDelay(true)
  if (config.enableKeepAlive) socket.once('connect', () => socket.setKeepAlive(true, config.keepAliveInitialDelay))
  return socket
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object without createConnection() (${Object.prototype.toString.call(value)})`
  return `type ${typeof value} (${String(value)})`
}
