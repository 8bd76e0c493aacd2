/**
 * How long our FIN is withheld after a tenant's goodbye, learnt per destination (address and port).
 *
 * Withholding the FIN lets a peer that closes after a goodbye (pg Terminate, Redis QUIT, HTTP
 * `Connection: close`) close first and keep the TIME_WAIT on its side. A peer that closes only after
 * our FIN (an echo server, a Kafka broker, an HTTP server whose idle keep-alive socket we drop) gains
 * nothing from the wait and only makes the tenant's `'close'` late. So each destination is probed
 * once with the full wait (`probeMs`, the recycler's `finDelayMs`):
 * - the peer closed first after `d` ms: later goodbyes wait at most `floorMs + margin * (d + rtt)`
 *   (`d` the largest recent delay, decaying), never more than `probeMs`; a wait that runs out
 *   (the peer was slower than ever before) makes the next goodbye a full probe again;
 * - the peer did not close within `probeMs`: later goodbyes send our FIN at once, as `net` does,
 *   except a full probe every `reprobeEvery` connections or `reprobeAfterMs`, in case it changed;
 *   a peer seen closing before the tenant's goodbye counts as closing first at no cost.
 * The table keeps at most `maxEntries` destinations, least recently used out first.
 * Pure logic: no sockets, no timers (the recycler measures and reports).
 */

/** What one release showed about its destination. */
export interface ReleaseObservation {
  /** The peer's FIN came before ours (it closes after a goodbye, or closed on its own). */
  peerClosedFirst: boolean
  /** From the tenant's goodbye (end() or destroy()) to the peer's EOF; 0 if the EOF came before it. */
  elapsedMs: number
  /** The wait this connection was given by finDelay(). */
  withheldMs: number
  /** The connection's smoothed RTT (TCP_INFO tcpi_rtt), when read; see wantsRtt(). */
  rttMs?: number
}

export interface ReleasePolicyConfig {
  /** The longest wait: a destination's first goodbye, re-probes, and the cap on every wait. */
  probeMs: number
  /** @default 1024 */
  maxEntries?: number
  /** A destination whose peer waits for our FIN is probed again after this many connections. @default 256 */
  reprobeEvery?: number
  /** ... or once this long has passed since its last probe. @default 60000 */
  reprobeAfterMs?: number
  /**
   * Added to every learnt wait: scheduling noise on a loaded host. It costs nothing while the peer
   * closes first (the wait ends at its EOF). With 100 ms, 3 of 15 runs of examples/microservice on
   * a loaded 2-core host (load 10 to 17) left a pg client TIME_WAIT: a PostgreSQL backend that
   * exits late saw our FIN first; a fixed wait left none in 8 of 8. @default 500
   */
  floorMs?: number
  /** Learnt waits are this many times the observed close delay plus RTT. @default 4 */
  margin?: number
  /** RTT is read again after this many observations of a destination. @default 16 */
  rttEvery?: number
  /** @default Date.now */
  now?: () => number
}

/** What a destination's peer does after a goodbye, as far as seen. */
export type Verdict = 'unknown' | 'closes-first' | 'waits-for-fin'

interface Entry {
  verdict: Verdict
  /** Largest recent goodbye-to-EOF delay (ms), decaying by DECAY per observation. */
  delayMs: number
  rttMs: number
  /** Observations so far. */
  seen: number
  rttSeenAt: number
  /** waits-for-fin: probe again once `seen` reaches this, or time passes reprobeAfterMs. */
  probeAtSeen: number
  probedAt: number
}

/** A spike in close delay is forgotten slowly: 0.9 per observation (about 20 connections to halve). */
const DECAY = 0.9

export class ReleasePolicy {
  readonly #table = new Map<string, Entry>()
  /** The key last moved to the end of #table (most recently used): one destination needs no move. */
  #newest: string | null = null
  readonly #probeMs: number
  readonly #maxEntries: number
  readonly #reprobeEvery: number
  readonly #reprobeAfterMs: number
  readonly #floorMs: number
  readonly #margin: number
  readonly #rttEvery: number
  readonly #now: () => number

  constructor(config: ReleasePolicyConfig) {
    this.#probeMs = config.probeMs
    this.#maxEntries = config.maxEntries ?? 1024
    this.#reprobeEvery = config.reprobeEvery ?? 256
    this.#reprobeAfterMs = config.reprobeAfterMs ?? 60_000
    this.#floorMs = config.floorMs ?? 500
    this.#margin = config.margin ?? 4
    this.#rttEvery = config.rttEvery ?? 16
    this.#now = config.now ?? Date.now
  }

  /** How long to withhold our FIN after this goodbye to `destination` (ms; 0: send it now). */
  finDelay(destination: string): number {
    const e = this.#table.get(destination)
    if (!e || e.verdict === 'unknown') return this.#probeMs
    if (e.verdict === 'closes-first') return this.#learntWait(e)
    if (e.seen >= e.probeAtSeen || this.#now() - e.probedAt >= this.#reprobeAfterMs) {
      // one connection probes; those in flight meanwhile keep sending their FIN at once
      this.#scheduleProbe(e)
      return this.#probeMs
    }
    return 0
  }

  /** Whether the next observation of `destination` should carry an RTT (one getsockopt). */
  wantsRtt(destination: string): boolean {
    const e = this.#table.get(destination)
    return !e || e.seen - e.rttSeenAt >= this.#rttEvery || e.rttSeenAt === 0
  }

  record(destination: string, o: ReleaseObservation): void {
    let e = this.#table.get(destination)
    if (!e) {
      e = { verdict: 'unknown', delayMs: 0, rttMs: 0, seen: 0, rttSeenAt: 0, probeAtSeen: 0, probedAt: 0 }
      if (this.#table.size >= this.#maxEntries) this.#table.delete(this.#table.keys().next().value!)
      this.#table.set(destination, e)
      this.#newest = destination
    } else if (destination !== this.#newest) {
      // re-inserted: most recently used last. Not when it is last already: a delete and a set per
      // connection leave a hole in the Map's table each time, which V8 compacts by rehashing.
      this.#table.delete(destination)
      this.#table.set(destination, e)
      this.#newest = destination
    }
    e.seen++
    if (o.rttMs !== undefined) {
      e.rttMs = o.rttMs
      e.rttSeenAt = e.seen
    }
    if (o.peerClosedFirst) {
      e.verdict = 'closes-first'
      e.delayMs = Math.max(o.elapsedMs, e.delayMs * DECAY)
      return
    }
    if (o.withheldMs >= this.#probeMs) {
      // a full wait and no FIN from the peer: it waits for ours
      e.verdict = 'waits-for-fin'
      this.#scheduleProbe(e)
    } else if (o.withheldMs > 0 && e.verdict === 'closes-first') {
      // it closes first, but later than ever seen (or not this time): probe with the full wait
      e.verdict = 'unknown'
    }
  }

  /** The current verdict on a destination (for diagnostics and tests). */
  verdict(destination: string): Verdict {
    return this.#table.get(destination)?.verdict ?? 'unknown'
  }

  get size(): number {
    return this.#table.size
  }

  #learntWait(e: Entry): number {
    return Math.min(this.#probeMs, Math.ceil(this.#floorMs + this.#margin * (e.delayMs + e.rttMs)))
  }

  #scheduleProbe(e: Entry): void {
    e.probeAtSeen = e.seen + this.#reprobeEvery
    e.probedAt = this.#now()
  }
}
