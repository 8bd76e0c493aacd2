import { InvalidArgumentError, defaultRecycler, type RecycledSocket, type SocketRecycler } from '@fdrecycle/core'

/**
 * What pg passes to a `stream` function: its connection config (ssl, keepAlive, ...), never the
 * host or port, which come later in `stream.connect(port, host)`. Nothing in it changes the socket.
 */
export type PgStreamConfig = Record<string, unknown>

/**
 * pg's `stream` option as a factory: pg (>= 8.9) calls it once per connection, including the
 * second connection of the cancel path (`Client#cancel`), and then calls `connect(port, host)`
 * or `connect(path)` on what it returns.
 */
export type PgStreamFactory = (config?: PgStreamConfig) => RecycledSocket

/**
 * A `stream` option for `pg.Client` and `pg.Pool` that runs TCP connections on recycled fds.
 *
 * ```ts
 * import pg from 'pg'
 * import { pgStream } from '@fdrecycle/pg-adapter'
 * const pool = new pg.Pool({ connectionString, stream: pgStream(recycler) })
 * ```
 *
 * Each call of the factory returns an unconnected socket of the recycler; the socket itself
 * chooses at `connect()`: a TCP host (IPv4, IPv6, a name) takes a pooled fd, a Unix-socket
 * directory (pg connects to `<host>/.s.PGSQL.<port>`) goes the plain net path. TLS (`ssl`),
 * keep-alive, timeouts and cancellation are pg's own, over that socket.
 *
 * @param recycler - the recycler that owns the fds; without one, `defaultRecycler()` is asked at
 *   each connection (so a default recycler closed at shutdown is replaced, not reused closed).
 * @throws InvalidArgumentError (`ERR_FDRECYCLE_INVALID_ARGUMENT`) if `recycler` is not a recycler.
 */
export function pgStream(recycler?: SocketRecycler): PgStreamFactory {
  if (recycler === undefined) return () => defaultRecycler().createSocket()
  // Duck-typed, not instanceof: two installed copies of @fdrecycle/core must work together.
  if (typeof recycler !== 'object' || recycler === null || typeof (recycler as { createSocket?: unknown }).createSocket !== 'function') {
    throw new InvalidArgumentError(
      `pgStream(recycler) expects a SocketRecycler (new SocketRecycler() or defaultRecycler()) or nothing; received ${describe(recycler)}`,
    )
  }
  return () => recycler.createSocket()
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object without createSocket() (${Object.prototype.toString.call(value)})`
  return `type ${typeof value} (${String(value)})`
}
