import { InvalidArgumentError, defaultRecycler, type RecycledSocket, type SocketRecycler } from '@fdrecycle/core'

/**
 * The fields of postgres.js's parsed options that decide the socket: `host` and `port` are
 * arrays (a multi-host URL or `host: 'a,b'` gives several), `path` is set for a Unix-socket host.
 */
export interface PostgresSocketOptions {
  host: string[]
  port: number[]
  path?: string | false
  [key: string]: unknown
}

/**
 * What the factory returns: a recycled socket, already connecting, with the `host` and `port` it
 * dials (postgres.js reads `socket.host` for the TLS servername, as it sets it on its own sockets).
 */
export type PostgresSocket = RecycledSocket & { host?: string; port?: number }

/** postgres.js's `socket` option: called for every connection attempt, with the parsed options. */
export type PostgresSocketFactory = (options: PostgresSocketOptions) => PostgresSocket

/**
 * A `socket` option for postgres.js (`postgres(url, { socket })`) that runs its connections on
 * recycled fds.
 *
 * ```ts
 * import postgres from 'postgres'
 * import { postgresSocket } from '@fdrecycle/postgresjs-adapter'
 * const sql = postgres(url, { socket: postgresSocket(recycler) })
 * ```
 *
 * postgres.js never calls `connect()` on a socket from this option and writes its startup (or
 * SSLRequest) at once, so each call returns a socket already connecting: Node buffers those
 * writes until it is connected, and `connect_timeout` counts from the same moment as for the
 * sockets postgres.js makes itself. TLS (`ssl`) is postgres.js's own `tls.connect({ socket })`
 * over it, with `socket.host` as the servername. `sql.end()` sends Terminate, after which the
 * server closes first: the fd is reused with no TIME_WAIT here.
 *
 * Multi-host lists: postgres.js rotates through its hosts only for sockets it makes itself.
 * Here an attempt goes to the host that served the last successful one (the first host to
 * begin with); a host that refuses or does not accept within `connect_timeout` moves the next attempt to the
 * next host in the list, and postgres.js, which retries a first connection that failed, comes
 * back for it. `target_session_attrs` is not followed across hosts (a host of the wrong kind is
 * not skipped): use a single host with it.
 *
 * @param recycler - the recycler that owns the fds; without one, `defaultRecycler()` is asked at
 *   each connection (so a default recycler closed at shutdown is replaced, not reused closed).
 * @throws InvalidArgumentError (`ERR_FDRECYCLE_INVALID_ARGUMENT`) if `recycler` is not a recycler.
 */
export function postgresSocket(recycler?: SocketRecycler): PostgresSocketFactory {
  // Duck-typed, not instanceof: two installed copies of @fdrecycle/core must work together.
  if (recycler !== undefined && (typeof recycler !== 'object' || recycler === null || typeof (recycler as { createConnection?: unknown }).createConnection !== 'function')) {
    throw new InvalidArgumentError(
      `postgresSocket(recycler) expects a SocketRecycler (new SocketRecycler() or defaultRecycler()) or nothing; received ${describe(recycler)}`,
    )
  }
  // One cursor per postgres() instance (its options object), shared by its connections.
  const cursors = new WeakMap<object, number>()
  return (options) => {
    const r = recycler ?? defaultRecycler()
    if (options.path) return r.createConnection({ path: options.path })
    const hosts = options.host
    const i = (cursors.get(options) ?? 0) % hosts.length
    const host = hosts[i]!
    const port = options.port[i] ?? options.port[0]!
    const socket: PostgresSocket = r.createConnection({ host, port })
    socket.host = host
    socket.port = port
    if (hosts.length > 1) {
      let connected = false
      socket.once('connect', () => (connected = true))
      // Closed before it connected (refused, unreachable, or destroyed by connect_timeout): this
      // host did not take the connection, so the next attempt goes to the next one.
      socket.once('close', () => {
        if (!connected && (cursors.get(options) ?? 0) % hosts.length === i) cursors.set(options, (i + 1) % hosts.length)
      })
    }
    return socket
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object without createConnection() (${Object.prototype.toString.call(value)})`
  return `type ${typeof value} (${String(value)})`
}
