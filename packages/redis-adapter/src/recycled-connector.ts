import type net from 'node:net'
import tls from 'node:tls'
import { InvalidArgumentError, InvalidOptionError, defaultRecycler, tlsConnectOverSocket, type SocketRecycler } from '@fdrecycle/core'
import type { RedisOptions } from 'ioredis'
import { sayQuit, watchForQuit } from './quit-goodbye.js'

/**
 * What ioredis hands to `new Connector(options)`: the connection's resolved options (for a
 * Cluster, `redisOptions` merged with one node's host and port). Only these fields are read.
 */
export interface ConnectorOptions {
  host?: string | null
  port?: number | null
  path?: string | null
  family?: number | null
  /** `tls` option, or `true` for a `rediss://` URL; merged into the connect options as ioredis does. */
  tls?: tls.ConnectionOptions | boolean | null
  /** ioredis's `disconnectTimeout`: how long disconnect() waits for 'close' before destroy(). */
  disconnectTimeout?: number
}

/** The stream a connector resolves: the recycled socket, or the TLS socket over it. */
export type RedisStream = net.Socket | tls.TLSSocket

/** The `Connector` option's type in the ioredis that resolves here (5 or 6: the same contract). */
export type RedisConnectorConstructor = NonNullable<RedisOptions['Connector']>

/** Options of recycledConnector(). */
export interface RecycledConnectorOptions {
  /**
   * After disconnect() sends QUIT, how long our FIN waits for Redis to close first (the recycler's
   * `finDelayMs` caps it). Redis answers QUIT within a round trip, unless a blocking command
   * (BLPOP, XREAD BLOCK, WAIT) holds the connection: then our FIN goes after this long, and Redis
   * drops the blocked client as it does for a plain `disconnect()`.
   * @default 250
   */
  quitTimeoutMs?: number
}

const DEFAULT_QUIT_TIMEOUT_MS = 250

/** ioredis's CONNECTION_CLOSED_ERROR_MSG, which its own connector rejects with. */
const CONNECTION_CLOSED = 'Connection is closed.'

/**
 * An ioredis connector (the `Connector` option) whose TCP connections come from a SocketRecycler.
 *
 * It keeps the contract of ioredis's StandaloneConnector (ioredis 5 and 6 ship the same one):
 * ioredis makes one connector per Redis instance and calls `connect()` for every attempt,
 * including reconnections; the stream is created on the next tick and resolved while still
 * connecting, so that `connectTimeout`, `keepAlive` and the 'connect' / 'secureConnect' handlers
 * are ioredis's own. With `tls`, Node's `tls.connect` wraps the recycled socket. Unix paths take
 * the recycler's plain path.
 *
 * What differs is the goodbye of `disconnect()`: on a recycled connection it sends QUIT before
 * `end()`, so that Redis closes first (no TIME_WAIT here, the fd is reused at once) instead of
 * waiting for our withheld FIN; see sayQuit().
 */
export class RecycledConnector {
  /** The first 'error' of the latest stream; ioredis reports it when the stream is already gone. */
  firstError?: Error
  protected connecting = false
  protected stream?: RedisStream
  readonly #options: ConnectorOptions
  readonly #recycler: SocketRecycler
  readonly #quitTimeoutMs: number
  /** The recycled socket under the current stream (the stream itself, or under its TLS). */
  #socket?: net.Socket
  /** Whether the app's own QUIT went out on the current stream (then Redis closes by itself). */
  #quitSent: () => boolean = never

  constructor(options: ConnectorOptions, recycler?: SocketRecycler, connectorOptions?: RecycledConnectorOptions) {
    this.#options = options
    this.#recycler = recycler ?? defaultRecycler()
    this.#quitTimeoutMs = connectorOptions?.quitTimeoutMs ?? DEFAULT_QUIT_TIMEOUT_MS
  }

  /** Sentinel's role check; a standalone or cluster node is always the right one. */
  check(_info: unknown): boolean {
    return true
  }

  /**
   * Opens a connection on the next tick and resolves its stream while it is still connecting;
   * rejects with ioredis's "Connection is closed." if disconnect() came first. Called by ioredis
   * for every connection attempt of its Redis instance.
   */
  connect(_emitError?: unknown): Promise<RedisStream> {
    this.connecting = true
    return new Promise((resolve, reject) => {
      // ioredis's own connector opens on the next tick: a disconnect() in between cancels the attempt.
      process.nextTick(() => {
        if (!this.connecting) {
          reject(new Error(CONNECTION_CLOSED))
          return
        }
        let stream: RedisStream
        try {
          stream = this.#open()
        } catch (err) {
          reject(err)
          return
        }
        this.stream = stream
        this.#quitSent = this.#recycles() ? watchForQuit(stream) : never
        stream.once('error', (err: Error) => {
          this.firstError = err
        })
        resolve(stream)
      })
    })
  }

  /**
   * ioredis's `disconnect()`: `end()` the stream, `destroy()` it if no 'close' came within
   * `disconnectTimeout`. On a recycled connection, QUIT goes first, so that Redis closes first.
   */
  disconnect(): void {
    this.connecting = false
    const stream = this.stream
    if (!stream) return
    const timeout = setTimeout(() => stream.destroy(), this.#options.disconnectTimeout)
    stream.on('close', () => clearTimeout(timeout))
    if (this.#recycles() && stream.writable && !stream.readableEnded && !this.#quitSent()) {
      sayQuit(stream)
      // A blocked connection answers QUIT only after its blocking command: ours must not wait the
      // recycler's whole finDelayMs for it.
      const quitTimeoutMs = Math.min(this.#quitTimeoutMs, this.#recycler.options.finDelayMs)
      const socket = this.#socket as (net.Socket & { finDelayMs?: number }) | undefined
      if (socket && 'finDelayMs' in socket) socket.finDelayMs = quitTimeoutMs
      if (stream instanceof tls.TLSSocket) {
        // TLS's end() sends close_notify, and Redis closes right after QUIT's reply without reading
        // anything more: a close_notify that crosses its close reaches a closed socket, and Redis's
        // kernel answers with RSTs (measured on a real path: 2 or 3 per connection). Nobody reads a
        // close_notify from us there: at Redis's EOF the TLS socket is destroyed instead (our FIN
        // then follows Redis's). A QUIT left unanswered for quitTimeoutMs (a blocked client) ends
        // it then, our FIN at once: that wait was the FIN delay.
        const end = setTimeout(() => {
          if (socket && 'finDelayMs' in socket) socket.finDelayMs = 0
          stream.end()
        }, quitTimeoutMs)
        stream.once('close', () => clearTimeout(end))
        stream.prependOnceListener('end', () => stream.destroy())
        return
      }
    }
    stream.end()
  }

  /** Whether connections of this connector run on recycled fds (TCP through a recycling recycler). */
  #recycles(): boolean {
    return this.#recycler.recycling && !this.#options.path
  }

  /** The same connect options as ioredis's StandaloneConnector, on a recycled socket. */
  #open(): RedisStream {
    const { path, port, host, family, tls: tlsOption } = this.#options
    const options: Record<string, unknown> = {}
    if (path) {
      options.path = path
    } else {
      if (port != null) options.port = port
      if (host != null) options.host = host
      if (family != null) options.family = family
    }
    if (tlsOption) Object.assign(options, tlsOption)
    const socket = this.#recycler.createConnection(options as unknown as net.NetConnectOpts)
    this.#socket = socket
    if (!tlsOption) return socket
    // TLS through the recycled socket's own methods: its end() goes through the socket's end(),
    // which withholds our FIN for Redis's (over the TCP handle, TLSWrap's end() is libuv's
    // shutdown: a FIN at once, before Redis answers QUIT; measured on a real path, Redis then
    // resets the connection).
    return tlsConnectOverSocket(socket, options as tls.ConnectionOptions)
  }
}

/**
 * The `Connector` option for ioredis (5 or 6), standalone or Cluster:
 *
 * ```ts
 * new Redis({ port, host, Connector: recycledConnector(recycler) })
 * new Redis.Cluster(nodes, { redisOptions: { Connector: recycledConnector(recycler) } })
 * ```
 *
 * @param recycler - where the fds come from; defaults to the process's `defaultRecycler()`
 *   (looked up for each Redis instance, so a closed default is replaced).
 */
export function recycledConnector(recycler?: SocketRecycler, connectorOptions?: RecycledConnectorOptions): RedisConnectorConstructor {
  if (recycler !== undefined && !isRecycler(recycler)) {
    throw new InvalidArgumentError('recycledConnector(recycler): expected a SocketRecycler from @fdrecycle/core or undefined')
  }
  if (connectorOptions !== undefined) {
    if (typeof connectorOptions !== 'object' || connectorOptions === null) {
      throw new InvalidOptionError('options', 'recycledConnector(recycler, options): expected an object')
    }
    for (const [key, value] of Object.entries(connectorOptions)) {
      if (key !== 'quitTimeoutMs') throw new InvalidOptionError(key, 'unknown option; the known option is quitTimeoutMs')
      if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1)) {
        throw new InvalidOptionError(key, `expected an integer from 0 to ${2 ** 31 - 1}, received ${String(value)}`)
      }
    }
  }
  class Connector extends RecycledConnector {
    constructor(options: ConnectorOptions) {
      super(options, recycler, connectorOptions)
    }
  }
  // ioredis types `Connector` as a subclass of its AbstractConnector (nominal: it has a private
  // field); ioredis itself only calls connect(), disconnect(), check() and reads firstError.
  return Connector as unknown as RedisConnectorConstructor
}

function never(): boolean {
  return false
}

function isRecycler(value: unknown): value is SocketRecycler {
  // Duck-typed: two installed copies of @fdrecycle/core have two SocketRecycler classes.
  const r = value as Partial<SocketRecycler> | null
  return typeof r === 'object' && r !== null && typeof r.createConnection === 'function' && typeof r.recycling === 'boolean'
}
