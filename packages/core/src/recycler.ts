import type net from 'node:net'
import { debug } from './diagnostics.js'
import { InvalidArgumentError, RecyclerClosedError, UnsupportedError } from './errors.js'
import { FdPool } from './fd-pool.js'
import { normalizeConnectArgs } from './connect-args.js'
import { validateOptions, type RecyclerOptions, type ResolvedRecyclerOptions } from './options.js'
import { closePooled, poolHooks } from './pool-hooks.js'
import { RecycledSocket } from './recycled-socket.js'
import { RecyclerState } from './recycler-state.js'
import { createSocketHost, type SocketHost } from './socket-host.js'
import type { RecyclerStats } from './stats.js'
import { recyclingSupport } from './support.js'
import { resolveMaxDraining } from './drain-budget.js'
import { openFileLimit } from './ffi/syscalls.js'
import { ReleasePolicy } from './release-policy.js'

export type { RecyclerStats } from './stats.js'

/** This library's per-socket options, accepted beside net's by createConnection and createSocket. */
export interface RecycledSocketOptions {
  /**
   * This socket's own finDelayMs: how long our FIN is withheld for the peer's after `end()`
   * (0: at once, as a plain socket does, for a peer that answers only after our EOF).
   * Undefined: the recycler's.
   */
  finDelayMs?: number | undefined
}

/** net.createConnection's options plus RecycledSocketOptions: `createConnection({ host, port, finDelayMs: 0 })`. */
export type RecycledConnectOpts = net.NetConnectOpts & RecycledSocketOptions

/**
 * Owns pools of unconnected TCP fds (one per address family) and the sockets that borrow them.
 *
 * ```ts
 * const recycler = new SocketRecycler({ finDelayMs: 500 })
 * const socket = recycler.createConnection({ host: 'db.internal', port: 5432 })
 * ```
 *
 * The release protocol (docs/lifecycle.md, release/protocol.ts): when a socket's user is done,
 * our FIN is withheld for the peer's (finDelayMs), so that peers that close after a goodbye leave
 * no TIME_WAIT here; an fd is reused only after the peer's EOF, then shut down and dissolved with
 * AF_UNSPEC, which sends no RST from LAST_ACK or CLOSE. A peer that never closes meets
 * `onDrainTimeout`.
 */
export class SocketRecycler {
  readonly options: ResolvedRecyclerOptions
  readonly #r: RecyclerState
  readonly #host: SocketHost
  #closing: Promise<void> | null = null

  constructor(options?: RecyclerOptions) {
    this.options = validateOptions(options)
    const support = recyclingSupport()
    if (this.options.mode === 'recycle' && !support.supported) {
      throw new UnsupportedError(support.reason ?? 'unknown reason', support.error)
    }
    const mode = this.options.mode !== 'passthrough' && support.supported ? 'recycling' : 'passthrough'
    debug('recycler created: mode %s%s', mode, support.supported ? '' : ` (${support.reason})`)
    this.#r = new RecyclerState(this.options, mode)
    this.#host = createSocketHost(this.#r)
    if (mode === 'recycling') {
      this.#r.pool = new FdPool(this.options, poolHooks(this.#r))
      if (this.options.releasePolicy === 'adaptive') this.#r.policy = new ReleasePolicy({ probeMs: this.options.finDelayMs })
      this.#r.maxDraining = resolveMaxDraining(this.options.maxDraining, openFileLimit)
    }
  }

  /** Same contract as net.createConnection: (options[, listener]), (port[, host][, listener]), (path[, listener]). */
  createConnection(options: RecycledConnectOpts, connectionListener?: () => void): RecycledSocket
  createConnection(port: number, host?: string, connectionListener?: () => void): RecycledSocket
  createConnection(path: string, connectionListener?: () => void): RecycledSocket
  createConnection(...args: unknown[]): RecycledSocket {
    const { options, listener } = normalizeConnectArgs(args)
    const socket = this.createSocket(constructorOptions(options))
    // as net.connect: any truthy timeout goes to setTimeout(), which checks it
    if (options.timeout) socket.setTimeout(options.timeout as number)
    return listener ? socket.connect(options, listener) : socket.connect(options)
  }

  /** An unconnected socket, for factories that call `connect(port, host)` later (pg's `stream`). */
  createSocket(options?: net.SocketConstructorOpts & RecycledSocketOptions): RecycledSocket {
    return new RecycledSocket(this.#host, options as (net.SocketConstructorOpts & Record<string, unknown>) | undefined)
  }

  stats(): RecyclerStats {
    const r = this.#r
    return {
      mode: r.mode,
      ...r.counters,
      idle: r.pool?.idle() ?? 0,
      cooling: r.pool?.cooling() ?? 0,
      active: r.active.size + r.plain.size,
      draining: r.draining.size,
    }
  }

  get recycling(): boolean {
    return this.#r.mode === 'recycling'
  }

  get closed(): boolean {
    return this.#r.closed
  }

  /**
   * Stops lending fds, waits (up to closeTimeoutMs) for sockets in use and draining, destroys the
   * rest, and closes every fd the recycler owns. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    const r = this.#r
    r.closed = true
    const pool = r.pool
    // Connects still waiting for an fd (maxSockets reached) fail now, not once one frees up.
    pool?.abortWaiters(new RecyclerClosedError())
    if (r.busy() > 0 && this.options.closeTimeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.closeTimeoutMs)
        r.onSettled = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    r.onSettled = null
    const inUse = () => new RecyclerClosedError('the SocketRecycler was closed while this socket was in use (closeTimeoutMs elapsed)')
    for (const socket of [...r.plain]) socket.destroy(inUse())
    if (!pool) return
    for (const pooled of [...r.active]) pooled.owner?.destroy(inUse())
    for (const [pooled, drain] of [...r.draining]) {
      drain?.abandon()
      r.draining.delete(pooled)
      closePooled(r, pooled, 'recycler closed while draining')
    }
    // Destroyed tenants hand their fds back on the next tick.
    await new Promise<void>((resolve) => setImmediate(resolve))
    for (const pooled of [...r.active]) closePooled(r, pooled, 'recycler closed')
    await pool.close()
  }
}

/** Keys of connect options that net.Socket's constructor ignores. */
const CONNECT_ONLY_KEYS = new Set([
  'port', 'host', 'path', 'localAddress', 'localPort', 'family', 'hints', 'lookup', 'timeout',
  'autoSelectFamily', 'autoSelectFamilyAttemptTimeout',
])

/**
 * The options worth passing to net.Socket's constructor, or undefined. Its `{ ...options }` copy
 * of a caller's object is a megamorphic, stub-cache-missing property walk per socket (about 15 µs
 * per connection measured here, `node --log-ic`); connect options alone need none of it.
 */
function constructorOptions(options: Record<string, unknown>): net.SocketConstructorOpts | undefined {
  for (const key in options) {
    if (!CONNECT_ONLY_KEYS.has(key)) return options as net.SocketConstructorOpts
  }
  return undefined
}

/**
 * Where the default recycler lives: on globalThis under a registered symbol, so that one process
 * has one, however many copies of this package it loaded (ESM and CJS builds, two installs).
 */
const kDefaultRecycler = Symbol.for('fdrecycle.defaultRecycler')
/** The options the default recycler is created with (configureDefaultRecycler), as kDefaultRecycler. */
const kDefaultOptions = Symbol.for('fdrecycle.defaultRecyclerOptions')

type DefaultSlots = Record<symbol, SocketRecycler | RecyclerOptions | undefined>

/** One recycler per process (options from configureDefaultRecycler(), else the defaults), for drop-in use by the adapters. */
export function defaultRecycler(): SocketRecycler {
  const g = globalThis as unknown as DefaultSlots
  let instance = g[kDefaultRecycler] as SocketRecycler | undefined
  if (!instance || instance.closed) {
    instance = new SocketRecycler(g[kDefaultOptions] as RecyclerOptions | undefined)
    g[kDefaultRecycler] = instance
  }
  return instance
}

/**
 * Sets the options of the process's default recycler, before its first use (a preload such as
 * @fdrecycle/auto does this from the environment). They are validated now, and also serve the
 * default recycler that replaces a closed one.
 *
 * @throws InvalidOptionError (`ERR_FDRECYCLE_INVALID_OPTION`) for an invalid option.
 * @throws InvalidArgumentError (`ERR_FDRECYCLE_INVALID_ARGUMENT`) once an open default recycler
 *   exists: its options can no longer change.
 */
export function configureDefaultRecycler(options: RecyclerOptions): void {
  validateOptions(options)
  const g = globalThis as unknown as DefaultSlots
  const instance = g[kDefaultRecycler] as SocketRecycler | undefined
  if (instance && !instance.closed) {
    throw new InvalidArgumentError('configureDefaultRecycler() must come before the first defaultRecycler(): the default recycler already exists')
  }
  g[kDefaultOptions] = Object.freeze({ ...options })
}
