import https from 'node:https'
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import type tls from 'node:tls'
import { withHandleHidden, type RecycledSocket, type SocketRecycler } from '@fdrecycle/core'
import { resolveRecycler, tcpConnectOptions, type RecyclerOption } from './options.js'

export interface RecycledHttpsAgentOptions extends https.AgentOptions, RecyclerOption {}

/**
 * A node:https `Agent` whose TLS connections run over recycled TCP sockets:
 * `tls.connect({ socket: recycled, servername, session, ... })`.
 *
 * `https.Agent`'s own `createConnection` still does the TLS part (servername, the TLS session
 * cache, every TLS option); this class only supplies the TCP socket. The TLS socket is made at
 * once over the still-connecting TCP socket, through that socket's own methods (Node's JS-stream
 * path: its handle is hidden from tls.connect, `withHandleHidden`), so that the Agent
 * gets its socket synchronously as with a plain https.Agent: `maxSockets` counts it from the
 * start and the `timeout` option covers the TCP connect and the handshake alike. Because TLS then
 * writes through the recycled socket's `end()`, our FIN is withheld for the server's as on plain
 * HTTP, and a server that closes first leaves no TIME_WAIT here.
 */
export class RecycledHttpsAgent extends https.Agent {
  /** The recycler this agent's TCP sockets come from. */
  readonly recycler: SocketRecycler
  readonly #transports = new WeakMap<Duplex, RecycledSocket>()

  constructor(options: RecycledHttpsAgentOptions = {}) {
    const { recycler, ...agentOptions } = options
    const resolved = resolveRecycler(recycler)
    super(agentOptions)
    this.recycler = resolved
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): tls.TLSSocket {
    const transport = this.recycler.createConnection(tcpConnectOptions(options as Record<string, unknown>) as unknown as net.NetConnectOpts)
    // Through the transport's own methods (the JS-stream path), never its handle: see the class comment.
    const socket = withHandleHidden(transport, () => super.createConnection({ ...options, socket: transport } as https.RequestOptions, callback)) as tls.TLSSocket
    // tls.connect() sets the timeout itself only when it makes the TCP socket.
    const timeout = (options as { timeout?: number }).timeout
    if (typeof timeout === 'number' && timeout > 0) socket.setTimeout(timeout)
    this.#transports.set(socket, transport)
    return socket
  }

  /**
   * As https.Agent's, plus SO_KEEPALIVE on the TCP socket: over a JS-stream transport, the TLS
   * socket's own setKeepAlive reaches no TCP handle (on a plain https.Agent it does).
   */
  override keepSocketAlive(socket: Duplex): boolean {
    const keep = (super.keepSocketAlive as (socket: Duplex) => boolean | undefined)(socket)
    this.#transports.get(socket)?.setKeepAlive(true, (this as unknown as { keepAliveMsecs: number }).keepAliveMsecs)
    return keep !== false
  }
}
