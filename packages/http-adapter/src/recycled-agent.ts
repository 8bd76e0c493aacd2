import http from 'node:http'
import type net from 'node:net'
import type { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { resolveRecycler, type RecyclerOption } from './options.js'

export interface RecycledAgentOptions extends http.AgentOptions, RecyclerOption {}

/**
 * A node:http `Agent` whose TCP connections come from a `SocketRecycler`.
 *
 * ```ts
 * const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 64 })
 * http.request(url, { agent })
 * ```
 *
 * Only `createConnection` differs from `http.Agent`: every Agent option keeps its meaning
 * (keepAlive, keepAliveMsecs, maxSockets, maxTotalSockets, maxFreeSockets, timeout, scheduling).
 * When the Agent lets go of a socket (the upstream answered `Connection: close`, an idle
 * keep-alive socket timed out or was dropped, an error, a response abandoned mid-body), the
 * recycler's release protocol takes the fd: it withholds our FIN for the server's, discards any
 * bytes still arriving, and only after the server's EOF dissolves the connection (AF_UNSPEC) and
 * lends the fd to the next connection. An unread byte of one response never reaches another.
 */
export class RecycledAgent extends http.Agent {
  /** The recycler this agent's sockets come from. */
  readonly recycler: SocketRecycler

  constructor(options: RecycledAgentOptions = {}) {
    const { recycler, ...agentOptions } = options
    const resolved = resolveRecycler(recycler)
    super(agentOptions)
    this.recycler = resolved
  }

  /**
   * What `http.Agent` calls for each new connection (by default `net.createConnection`); the
   * options are the Agent's merged request options, handed to the recycler unchanged.
   */
  override createConnection(options: http.ClientRequestArgs): RecycledSocket {
    return this.recycler.createConnection(options as net.NetConnectOpts)
  }
}
