import net from 'node:net'
import tls from 'node:tls'
import { InvalidArgumentError, tlsConnectOverSocket, type RecycledSocket, type SocketRecycler } from '@fdrecycle/core'
import { ConnectTimeoutError } from './connect-timeout-error.js'
import { describe, optionalBoolean, optionalInteger, resolveRecycler, tcpConnectOptions } from './options.js'
import { SessionCache } from './session-cache.js'

/**
 * Options of `undiciConnector`: those of undici's `buildConnector` (every tls.connect option,
 * `timeout`, `maxCachedSessions`, `keepAlive`, `keepAliveInitialDelay`, `allowH2`, `servername`,
 * `session`, `socketPath`), with the same defaults.
 */
export interface UndiciConnectorOptions extends Omit<tls.ConnectionOptions, 'timeout'> {
  /**
   * Connect timeout in ms (TCP connect plus TLS handshake); `0` or `null`: none.
   * @default 10000
   */
  timeout?: number | null
  /**
   * TLS sessions kept for resumption, per servername; `0` disables the cache.
   * @default 100
   */
  maxCachedSessions?: number | null
  /**
   * SO_KEEPALIVE on each TCP connection.
   * @default true
   */
  keepAlive?: boolean | null
  /**
   * TCP keep-alive initial delay in ms.
   * @default 60000
   */
  keepAliveInitialDelay?: number
  /**
   * Offer `h2` in ALPN on https connections (undici's `allowH2`).
   * @default false
   */
  allowH2?: boolean
  /** A Unix socket to connect to instead (such connections are never recycled). */
  socketPath?: string | null
  /** net.connect's `lookup`, for the TCP connection. */
  lookup?: net.LookupFunction
  /** net.connect's address family, for the TCP connection. */
  family?: number
}

/** What undici passes to its `connect` function (undici's `buildConnector.Options`). */
export interface UndiciConnectOptions {
  hostname: string
  host?: string
  protocol: string
  port: string | number
  servername?: string | null
  localAddress?: string | null
  /** A Unix socket for this connection (never recycled). */
  socketPath?: string | null
  /** An already connected socket to upgrade to TLS (undici's proxy tunnels). */
  httpSocket?: net.Socket
}

/** undici's `buildConnector.Callback`. */
export type UndiciConnectCallback = (...args: [null, net.Socket | tls.TLSSocket] | [Error, null]) => void

/** undici's `connect` option as a function: `new undici.Agent({ connect: undiciConnector(recycler) })`. */
export type UndiciConnect = (options: UndiciConnectOptions, callback: UndiciConnectCallback) => net.Socket | tls.TLSSocket

/**
 * An undici connector (the `connect` option of `Client`, `Pool` and `Agent`) whose TCP sockets
 * come from `recycler`; it does what undici's `buildConnector` does (TLS with servername, session
 * cache and ALPN, keep-alive, no-delay, connect timeout), over a recycled socket.
 *
 * ```ts
 * const dispatcher = new undici.Agent({ connect: undiciConnector(recycler) })
 * ```
 *
 * undici destroys a socket when the server answers `Connection: close`, on an idle timeout, on
 * an error and when a body is abandoned; the recycler then waits for the server's EOF, discarding
 * what still arrives, before the fd serves another connection.
 */
export function undiciConnector(recycler?: SocketRecycler, options: UndiciConnectorOptions = {}): UndiciConnect {
  const resolved = resolveRecycler(recycler)
  validateConnectorOptions(options)
  const { timeout, maxCachedSessions, keepAlive, keepAliveInitialDelay, allowH2, socketPath, session: customSession, ...rest } = options
  const connectTimeout = timeout ?? 10_000
  const sessions = new SessionCache(maxCachedSessions ?? 100)
  const tlsOptions: tls.ConnectionOptions = rest
  const tcpOptions = tcpConnectOptions(rest as Record<string, unknown>)
  if (socketPath) tcpOptions.path = socketPath

  return function connect({ hostname, host, protocol, port, servername, localAddress, socketPath: path, httpSocket }, callback) {
    const tcp = path ? { ...tcpOptions, path } : tcpOptions
    let socket: net.Socket | tls.TLSSocket
    let transport: net.Socket
    let done = false
    if (protocol === 'https:') {
      const name = servername || tlsOptions.servername || serverNameOf(host) || null
      const sessionKey = name || hostname
      const session = customSession || sessions.get(sessionKey) || null
      const portNumber = Number(port) || 443
      transport = httpSocket ?? resolved.createConnection({ ...tcp, host: hostname, port: portNumber, localAddress: localAddress ?? undefined } as net.NetConnectOpts)
      const secure = {
        highWaterMark: 16384, // as undici: TLS records are at most 16 KiB
        ...tlsOptions,
        servername: name ?? undefined,
        session: session ?? undefined,
        ALPNProtocols: allowH2 ? ['http/1.1', 'h2'] : ['http/1.1'],
        port: portNumber,
        host: hostname,
      } as tls.ConnectionOptions
      // Over a recycled socket, through its own methods (Node's JS-stream path), never its TCP
      // handle: TLS's end() then goes through the socket's end(), which withholds our FIN for the
      // server's. undici's own socket (a tunnel through a proxy) is wrapped as undici would.
      socket = httpSocket ? tls.connect({ ...secure, socket: httpSocket }) : tlsConnectOverSocket(transport, secure)
      socket.on('session', (s: Buffer) => sessions.set(sessionKey, s))
    } else {
      if (httpSocket) throw new TypeError('httpSocket can only be sent on TLS update')
      // As undici's net.connect: every option, so that socket constructor options reach the socket.
      transport = socket = resolved.createConnection({
        highWaterMark: 64 * 1024,
        ...rest,
        ...tcp,
        localAddress: localAddress ?? undefined,
        port: Number(port) || 80,
        host: hostname,
      } as net.NetConnectOpts) as RecycledSocket
    }
    // TCP options on the TCP socket itself: over a JS-stream transport, a TLS socket's setNoDelay
    // and setKeepAlive reach no TCP handle.
    if (keepAlive !== false && keepAlive !== null) transport.setKeepAlive(true, keepAliveInitialDelay ?? 60_000)
    transport.setNoDelay(true)

    let timer: NodeJS.Timeout | null = null
    let immediate: NodeJS.Immediate | null = null
    if (connectTimeout > 0) {
      timer = setTimeout(() => {
        // As undici: let an 'error' already queued for this socket win over the timeout.
        immediate = setImmediate(() => {
          immediate = null
          if (done) return
          const attempted = (socket as { autoSelectFamilyAttemptedAddresses?: string[] }).autoSelectFamilyAttemptedAddresses
          const where = Array.isArray(attempted) ? `attempted addresses: ${attempted.join(', ')}` : `attempted address: ${hostname}:${port}`
          socket.destroy(new ConnectTimeoutError(`Connect Timeout Error (${where}, timeout: ${connectTimeout}ms)`))
        })
      }, connectTimeout)
      timer.unref()
    }
    const settle = (err: Error | null): void => {
      if (timer) clearTimeout(timer)
      if (immediate) clearImmediate(immediate)
      timer = immediate = null
      if (done) return
      done = true
      if (err) callback(err, null)
      else callback(null, socket)
    }
    socket
      .once(protocol === 'https:' ? 'secureConnect' : 'connect', () => settle(null))
      .on('error', (err: Error) => settle(err))
    return socket
  }
}

function validateConnectorOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`undiciConnector(recycler, options): options must be an object, received ${describe(options)}`)
  }
  const o = options as Record<string, unknown>
  optionalInteger('timeout', o.timeout, 0)
  optionalInteger('maxCachedSessions', o.maxCachedSessions, 0)
  optionalInteger('keepAliveInitialDelay', o.keepAliveInitialDelay, 0)
  optionalBoolean('keepAlive', o.keepAlive)
  optionalBoolean('allowH2', o.allowH2)
}

/** undici's util.getServerName: the host without its port; '' for an IP address (no SNI). */
function serverNameOf(host: string | undefined): string | null {
  if (!host) return null
  let name = host
  if (name.startsWith('[')) {
    const end = name.indexOf(']')
    name = end === -1 ? name : name.slice(1, end)
  } else {
    const colon = name.indexOf(':')
    if (colon !== -1) name = name.slice(0, colon)
  }
  return net.isIP(name) ? '' : name
}
