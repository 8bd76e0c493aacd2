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
  compress?: boolean
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
 * TIME_WAIT here. mysql2's `destroy()` (also what its pool does to idle connections, unless
 * `gracefulEnd`) sends nothing and ends the stream; on a recycled, uncompressed, non-TLS
 * connection past its handshake the stream then says COM_QUIT itself first (see sayQuitAtEnd()),
 * so that the server closes first there too.
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
  // Compressed packets would need the goodbye compressed too: left as a plain end() there.
  if (recycler.recycling && !config.compress) sayQuitAtEnd(socket)
  return socket
}

/** COM_QUIT as mysql2 writes it: payload length 1, sequence id 0, command 0x01. */
const COM_QUIT = Buffer.from([1, 0, 0, 0, 1])

/**
 * Makes `end()` send COM_QUIT first when mysql2 ends the stream without one (`destroy()`, a pool
 * dropping an idle connection): MySQL and MariaDB close on COM_QUIT without a reply, so the
 * server's FIN comes first and the recycler reuses the fd with no TIME_WAIT here, instead of
 * withholding our FIN for `finDelayMs` and then sending it first.
 *
 * Only once the connection is in its command phase: mysql2 has written a packet with sequence id 0
 * (commands start at 0; the handshake response and auth packets do not), which it never does on
 * this socket once TLS has taken it over (TLS writes below JavaScript). Not when mysql2's own
 * COM_QUIT went out, nor when the server has closed already.
 */
function sayQuitAtEnd(socket: RecycledSocket): void {
  let commandPhase = false
  let quitSent = false
  const watch = (): void => {
    const write = socket.write
    socket.write = function writeWatchingForCommands(this: RecycledSocket, chunk: unknown, ...rest: unknown[]): boolean {
      if (Buffer.isBuffer(chunk) && chunk.length >= 5 && chunk[3] === 0) {
        commandPhase = true
        if (chunk.equals(COM_QUIT)) quitSent = true
      }
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
    } as RecycledSocket['write']
  }
  // net.Socket#connect() puts the prototype's write() back; mysql2 writes nothing before the
  // server's greeting, which comes after 'connect'.
  socket.once('connect', watch)
  const end = socket.end
  socket.end = function endWithQuit(this: RecycledSocket, ...args: unknown[]): RecycledSocket {
    if (commandPhase && !quitSent && this.writable && !this.readableEnded) {
      quitSent = true
      this.write(COM_QUIT)
    }
    return (end as (...a: unknown[]) => RecycledSocket).apply(this, args)
  } as RecycledSocket['end']
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object without createConnection() (${Object.prototype.toString.call(value)})`
  return `type ${typeof value} (${String(value)})`
}
