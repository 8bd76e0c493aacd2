// node-redis (`redis` 4, 5 and 6, i.e. `@redis/client` 1, 5 and 6): every client socket, plain TCP or
// TLS, on a recycled fd.
//
// node-redis opens its sockets privately: @redis/client's socket module (dist/lib/client/socket.js)
// keeps `net` and `tls` in module-level bindings and calls `net.connect` / `net.createConnection` /
// `tls.connect` from private methods (WeakMap-private in 1.x, `#private` in 5 and 6), and takes no
// connect function of the user's. Nothing of it can be patched from outside, so the module is
// evaluated a second time with a `require` that hands it a `net` and a `tls` of ours, and the
// class it exports replaces the original one on the original exports object: the client module
// reads `socket_1.default` at every `new`, so every client made afterwards uses it. That covers
// both orders: loaded later (require-in-the-middle sees the file load, by `require` or by an ESM
// `import` of the CommonJS package) and loaded earlier (the copy in require.cache).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { dirname, join, sep } from 'node:path'
import tls from 'node:tls'
import vm from 'node:vm'
import { observeWrites, type SocketRecycler } from '@fdrecycle/core'
import { hookFile } from '../hook.js'
import type { Integration, IntegrationContext } from '../integration.js'

/** The socket module inside the @redis/client package, and as require-in-the-middle names it. */
const SOCKET_FILE = join('dist', 'lib', 'client', 'socket.js')
/** The same file as the preload's require hook names it (hook.ts: a package path without `.js`). */
const SOCKET_HOOK = '@redis/client/dist/lib/client/socket'

/** redis 4.0's client package, before it became @redis/client (4.1): left plain, with a warning. */
const LEGACY_PACKAGE = '@node-redis/client'

/**
 * @redis/client majors the tests run (redis 4 ships @redis/client 1; redis 5 and 6 ship the same
 * major of @redis/client). Another major is left plain, with a warning.
 */
export const TESTED_REDIS_CLIENT_MAJORS: readonly number[] = [1, 5, 6]

/** The ids the socket module requires net and tls by (1.x: `net`, 5 and 6: `node:net`). */
const NET_IDS = new Set(['net', 'node:net'])
const TLS_IDS = new Set(['tls', 'node:tls'])

interface SocketModuleExports {
  default: unknown
  [key: string]: unknown
}

export const redis: Integration = {
  name: 'redis',
  install(context: IntegrationContext): () => void {
    const patched = new Map<SocketModuleExports, unknown>()
    const seen = new Set<string>()
    const patch = (exports: SocketModuleExports, filename: string): void => {
      if (seen.has(filename)) return
      seen.add(filename)
      const replacement = recycledSocketClass(filename, context)
      if (replacement === undefined) return
      patched.set(exports, exports.default)
      exports.default = replacement
    }

    const skipLegacy = (dir: string): void => {
      if (seen.has(dir)) return
      seen.add(dir)
      context.skip(`node-redis: ${LEGACY_PACKAGE} at ${dir} (redis 4.0) is not a version @fdrecycle/auto is tested with (redis 4.1 and later, 5, 6); its clients stay plain`)
    }
    // Loaded before (every copy in require.cache: an app may hold several versions) and after, by
    // require or by an import of the CommonJS package: the preload's one require hook (hook.ts).
    const undo = [
      hookFile(SOCKET_HOOK, (exports, basedir) => {
        patch(exports as SocketModuleExports, join(basedir, SOCKET_FILE))
        return exports
      }),
      hookFile(LEGACY_PACKAGE, (exports, basedir) => {
        skipLegacy(basedir)
        return exports
      }),
    ]
    // redis 4.0 loaded before: its main file is not where hookFile looks for a loaded copy
    for (const filename of Object.keys(createRequire(join(process.cwd(), 'noop.js')).cache)) {
      const legacy = filename.indexOf(`${sep}${LEGACY_PACKAGE.replace('/', sep)}${sep}`)
      if (legacy >= 0) skipLegacy(filename.slice(0, legacy + 1 + LEGACY_PACKAGE.length))
    }

    return () => {
      for (const u of undo.reverse()) u()
      for (const [exports, original] of patched) exports.default = original
      patched.clear()
      seen.clear()
    }
  },
}

/**
 * The RedisSocket class of this copy of @redis/client, evaluated again with a net and a tls whose
 * connects go through the recycler; undefined (and one warning) for a version or a file this
 * integration does not know.
 */
function recycledSocketClass(filename: string, context: IntegrationContext): unknown {
  const packageDir = dirname(dirname(dirname(dirname(filename))))
  let version: string
  let source: string
  try {
    version = String((JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version?: unknown }).version)
    source = readFileSync(filename, 'utf8')
  } catch (err) {
    context.skip(`node-redis: cannot read @redis/client at ${packageDir} (${(err as Error).message}); its clients stay plain`)
    return undefined
  }
  const major = Number.parseInt(version, 10)
  if (!TESTED_REDIS_CLIENT_MAJORS.includes(major)) {
    context.skip(
      `node-redis: @redis/client ${version} is not a version @fdrecycle/auto is tested with (majors ${TESTED_REDIS_CLIENT_MAJORS.join(', ')}: redis 4, 5 and 6); its clients stay plain`,
    )
    return undefined
  }
  // The one thing this relies on: the module takes net and tls by require and connects through them.
  if (!/require\("(node:)?net"\)/.test(source) || !/require\("(node:)?tls"\)/.test(source)) {
    context.skip(`node-redis: @redis/client ${version}'s socket module does not require net and tls as expected; its clients stay plain`)
    return undefined
  }
  const recycler = context.recycler
  const realRequire = createRequire(filename)
  const scopedNet = recycledNet(recycler)
  const scopedTls = recycledTls(recycler)
  const scopedRequire = Object.assign(
    (id: string): unknown => (NET_IDS.has(id) ? scopedNet : TLS_IDS.has(id) ? scopedTls : realRequire(id)),
    realRequire,
  )
  const module = { exports: {} as SocketModuleExports }
  try {
    const evaluate = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename })
    evaluate.call(module.exports, module.exports, scopedRequire, module, filename, dirname(filename))
  } catch (err) {
    // Never the app's problem: its own require of the module has already succeeded.
    context.skip(`node-redis: @redis/client ${version}'s socket module failed to load again (${(err as Error).message}); its clients stay plain`)
    return undefined
  }
  const RedisSocket = module.exports.default
  if (typeof RedisSocket !== 'function') {
    context.skip(`node-redis: @redis/client ${version}'s socket module exports no class as default; its clients stay plain`)
    return undefined
  }
  // 1.x (redis 4) has no close(): its disconnect() is a destroy().
  return major === 1 ? RedisSocket : withCloseGoodbye(RedisSocket as RedisSocketClass, recycler)
}

/** The members of @redis/client 5 and 6's RedisSocket that the close() goodbye uses. */
interface RedisSocketLike {
  close(): void
  destroy(): void
  destroySocket(): void
  write(iterable: Iterable<ReadonlyArray<string | Buffer>>): void
}
type RedisSocketClass = new (...args: unknown[]) => RedisSocketLike

/** QUIT as a RESP array, as node-redis writes every command. */
const QUIT = '*1\r\n$4\r\nQUIT\r\n'
const closing = Symbol('fdrecycle.redis.closing')
const recycled = Symbol('fdrecycle.redis.recycled')

/**
 * client.close() (redis 5 and 6) waits for the replies in flight and then destroy()s the socket
 * without a word to Redis: our FIN would go first, and this side would keep the TIME_WAIT. On a
 * recycled connection it says QUIT first, as quit() does, so that Redis closes first: the socket
 * waits for Redis's EOF behind node-redis's back (awaitRedisCloseAfterQuit), and close() resolves
 * when it would have.
 * destroy() and disconnect() are left as they are: no goodbye, as without fdrecycle.
 */
function withCloseGoodbye(Base: RedisSocketClass, recycler: SocketRecycler): RedisSocketClass {
  class RecycledRedisSocket extends Base {
    [closing] = false
    readonly [recycled]: boolean
    constructor(...args: unknown[]) {
      super(...args)
      // The socket options decide, as in recycledNet/recycledTls: (initiator, clientId, options)
      // since 5.1, (initiator, options) in 5.0; node-redis passes every parameter.
      this[recycled] = recycler.recycling && !leftPlain((args.length > 2 ? args[2] : args[1]) ?? {})
    }
    override close(): void {
      super.close()
      this[closing] = true
    }
    override destroy(): void {
      this[closing] = false
      super.destroy()
    }
    override destroySocket(): void {
      if (this[closing] && this[recycled]) this.write([[QUIT]])
      this[closing] = false
      super.destroySocket()
    }
  }
  Object.defineProperty(RecycledRedisSocket, 'name', { value: (Base as { name: string }).name })
  return RecycledRedisSocket
}

/** Options the recycler does not take over: the socket node-redis is given stays plain then. */
function leftPlain(options: unknown): boolean {
  if (typeof options !== 'object' || options === null) return true
  const o = options as Record<string, unknown>
  // a Unix socket, an fd or handle of the user's, an existing socket to run TLS over
  return o.path != null || o.fd != null || o.handle != null || o.socket != null
}

/** node:net for the socket module: connect and createConnection on a recycled fd. */
function recycledNet(recycler: SocketRecycler): typeof net {
  const connect = (...args: unknown[]): net.Socket => {
    // A closed recycler (the app's own shutdown may close the process's) leaves later clients plain.
    if (leftPlain(args[0]) || recycler.closed) return (net.createConnection as (...a: unknown[]) => net.Socket)(...args)
    const socket = (recycler.createConnection as (...a: unknown[]) => net.Socket)(...args)
    if (recycler.recycling) awaitRedisCloseAfterQuit(socket, recycler.options.finDelayMs)
    return socket
  }
  return Object.assign(Object.create(net) as typeof net, { connect, createConnection: connect })
}

/** node:tls for the socket module: tls.connect over a recycled socket. */
function recycledTls(recycler: SocketRecycler): typeof tls {
  const connect = (...args: unknown[]): tls.TLSSocket => {
    const options = args[0]
    if (leftPlain(options) || args.length !== 1 || recycler.closed) return (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args)
    const socket = recycler.createConnection(options as net.NetConnectOpts)
    // As the ioredis adapter does: a TLS socket made over a socket that already has its libuv
    // handle (an fd the idle pool lent synchronously) wraps the handle in C++, and its end() or
    // destroy() would shut the fd down below JavaScript, before Redis's FIN. Hidden from the
    // TLSSocket constructor (the only place that looks), TLS runs over the recycled socket as a
    // stream, which sees Redis's EOF itself.
    const internals = socket as unknown as { _handle: unknown }
    const handle = internals._handle
    internals._handle = null
    let tlsSocket: tls.TLSSocket
    try {
      tlsSocket = tls.connect({ ...(options as tls.ConnectionOptions), socket })
    } finally {
      internals._handle = handle
    }
    if (recycler.recycling) awaitRedisCloseAfterQuit(tlsSocket, recycler.options.finDelayMs)
    return tlsSocket
  }
  return Object.assign(Object.create(tls) as typeof tls, { connect })
}

/** QUIT as node-redis writes it (a RESP array of one bulk string), in lower case for comparing. */
const QUIT_TAIL = QUIT.toLowerCase()

/**
 * node-redis destroy()s its socket right after QUIT: quit() as soon as Redis's `+OK` is read,
 * close() (with the goodbye of withCloseGoodbye) right after writing it. Redis closes after that
 * reply; a destroy() before its EOF would leave the reply, and over TLS the close_notify that Redis
 * sends with its FIN (SSL_shutdown in its connection close), unread in the kernel, and a close with
 * unread bytes is a reset (a plain TLS client resets there too, now and then; measured with the
 * destroy() going through: 1 to 4 in 100 quits). When the last command written was QUIT, a
 * destroy() without an error waits for Redis's EOF instead (at most finDelayMs, as long as our FIN
 * would be withheld for it). node-redis has let go of the socket by then: its 'data' and 'error'
 * listeners are taken off first, as a destroyed socket would emit neither.
 */
function awaitRedisCloseAfterQuit(socket: net.Socket, waitMs: number): void {
  let tail = ''
  observeWrites(socket, (chunk) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('latin1') : ''
    tail = (tail + text).slice(-QUIT_TAIL.length)
  })
  const destroy = socket.destroy
  socket.destroy = function destroyAfterRedisClose(this: net.Socket, error?: Error): net.Socket {
    if (error !== undefined || this.destroyed || this.readableEnded || tail.toLowerCase() !== QUIT_TAIL) return destroy.call(this, error)
    socket.destroy = destroy
    this.removeAllListeners('data')
    this.removeAllListeners('error')
    this.on('error', () => {})
    const timer = setTimeout(() => destroy.call(this), waitMs)
    timer.unref()
    const done = (): void => {
      clearTimeout(timer)
      destroy.call(this)
    }
    this.once('end', done)
    this.once('close', () => clearTimeout(timer))
    // Reading on: the close_notify and the EOF arrive through 'end' only while the socket flows.
    this.resume()
    return this
  }
}
