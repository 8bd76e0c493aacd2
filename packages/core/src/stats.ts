/** A snapshot of what a recycler owns and has done (undici's PoolStats, no metrics library). */
export interface RecyclerStats {
  mode: 'recycling' | 'passthrough'
  /**
   * fds (handles) the recycler has owned, pooled or behind a plain-path socket (passthrough, a Unix
   * path, an explicit localAddress/localPort): fdsCreated - fdsClosed == idle + active + draining
   */
  fdsCreated: number
  fdsClosed: number
  /** connect() calls that took an fd */
  connections: number
  /** connections served by an fd that had served one before */
  reusedConnections: number
  /** fds returned to the pool after a connection (dissolved, or parked to be dissolved) */
  recycled: number
  /** AF_UNSPEC calls that sent an RST (resetAndDestroy, reset policy, connections that broke) */
  resetsSent: number
  /** peers that sent no EOF within drainTimeoutMs */
  drainTimeouts: number
  /** connections whose peer closed first while our FIN was withheld: no TIME_WAIT on our side */
  peerClosedFirst: number
  /** connections where our FIN went first (finDelayMs elapsed or 0): TIME_WAIT on our side */
  finSentFirst: number
  /** bytes that arrived after their socket's user had let go, read and dropped (one read, then a reset) */
  discardedBytes: number
  /** drains closed early (close(2), as a plain socket's destroy() would) because maxDraining was reached */
  drainsShed: number
  /**
   * FINs withheld after a tenant's goodbye and sent early (as net's end() sends them), because
   * maxDraining was reached counting withheld FINs and drains together
   */
  finDelaysShed: number
  /** idle fds in the pools (unconnected or parked), including those cooling */
  idle: number
  /** idle fds released in this or the last event-loop turn, lendable after the next poll phase */
  cooling: number
  /** fds in use by a socket (pooled or plain-path) */
  active: number
  /** fds whose user is gone and whose peer has not yet closed */
  draining: number
}

/** The counters a recycler keeps; the rest of RecyclerStats is read from its sets at snapshot time. */
export type Counters = Omit<RecyclerStats, 'mode' | 'idle' | 'cooling' | 'active' | 'draining'>

export function newCounters(): Counters {
  return {
    fdsCreated: 0,
    fdsClosed: 0,
    connections: 0,
    reusedConnections: 0,
    recycled: 0,
    resetsSent: 0,
    drainTimeouts: 0,
    peerClosedFirst: 0,
    finSentFirst: 0,
    discardedBytes: 0,
    drainsShed: 0,
    finDelaysShed: 0,
  }
}
