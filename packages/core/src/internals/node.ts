import net from 'node:net'
import { dissolve, openTcpSocket } from '../ffi/syscalls.js'
import { hookConnect } from './connect-hook.js'
import { rehookNoDelay } from './nodelay-hook.js'

/**
 * Every private access to Node's net internals lives in this folder (src/internals/), behind the
 * typed contract below: the handle and socket members this library reads or sets, found by
 * reflection and checked once (nodeInternals()), then exercised by a real round trip
 * (probe.ts) before any recycler recycles. A Node that changes them degrades to plain sockets.
 */

/**
 * The libuv TCP handle behind a net.Socket (Node's TCPWrap), as far as this library touches it.
 * Reusing the handle itself, not just the fd, was the fastest path measured: no socket(2), no
 * guessHandleType, no epoll re-registration dance.
 */
export interface TcpHandle {
  readonly fd: number
  readonly bytesRead: number
  readonly bytesWritten: number
  readonly writeQueueSize: number
  reading: boolean
  onread: unknown
  readStart(): number
  readStop(): number
  close(cb?: () => void): void
  ref(): void
  unref(): void
  open(fd: number): number
  setNoDelay(enable: boolean): number
  setKeepAlive(enable: boolean, delaySeconds: number, ...rest: unknown[]): number
  setTypeOfService?: (tos: number) => number
  getAsyncId(): number
  getProviderType(): number
  asyncReset(resource: object): void
  connect(req: object, address: string, port: number): number
  connect6(req: object, address: string, port: number): number
  [key: symbol]: unknown
}

/**
 * What this library needs from Node's net internals, found by reflection on a live socket and
 * checked before use; where any piece is missing, recycling is unsupported and every socket is a
 * plain one. Tested on Node 20, 22, 24 and 26.
 */
export interface NodeInternals {
  /** TCPWrap's constructor: `new TCP(0)` is an fd-less client handle, as net.Socket#connect makes. */
  readonly TCP: new (type: number) => TcpHandle
  readonly tcpPrototype: { connect: TcpHandle['connect']; connect6: TcpHandle['connect6'] }
  /** handle[owner_symbol]: the JS object that receives the handle's callbacks */
  readonly ownerSymbol: symbol
  /** socket[async_id_symbol] */
  readonly asyncIdSymbol: symbol
  /** stream_base_commons' onStreamRead, the handle.onread every net.Socket installs */
  readonly onStreamRead: unknown
  /** socket[kTimeout]: the setTimeout() timer, cleared on destroy as net's _destroy does */
  readonly timeoutSymbol: symbol
  /**
   * net.Socket.prototype[kUpdateTimer], which onStreamRead calls on the handle's owner first; a
   * ReadDrain (drain-socket.ts) answers it. Undefined where Node has none: drains are sockets then.
   */
  readonly updateTimerSymbol: symbol | undefined
}

let internals: NodeInternals | undefined

function findSymbol(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((s) => s.description === description)
}

/** Discovers the internals once; throws an Error naming what is missing. */
export function nodeInternals(): NodeInternals {
  if (internals) return internals
  const fd = openTcpSocket(4)
  // AF_UNSPEC on a fresh socket must succeed (the round trip in probe.ts tests the rest).
  dissolve(fd)
  const probe = new net.Socket({ fd, readable: false, writable: false, manualStart: true } as net.SocketConstructorOpts)
  try {
    const handle = (probe as unknown as { _handle: TcpHandle | null })._handle
    if (!handle) throw new Error('net.Socket({ fd }) created no handle')
    const ownerSymbol = findSymbol(handle, 'owner_symbol')
    const asyncIdSymbol = findSymbol(probe, 'async_id_symbol')
    const timeoutSymbol = findSymbol(probe, 'timeout')
    const onStreamRead = handle.onread
    const TCP = handle.constructor as NodeInternals['TCP']
    const proto = Object.getPrototypeOf(handle) as NodeInternals['tcpPrototype'] & Partial<TcpHandle>
    const missing = [
      !ownerSymbol && 'owner_symbol',
      !asyncIdSymbol && 'async_id_symbol',
      !timeoutSymbol && 'kTimeout',
      typeof onStreamRead !== 'function' && 'onStreamRead',
      typeof proto.connect !== 'function' && 'TCP#connect',
      typeof proto.connect6 !== 'function' && 'TCP#connect6',
      typeof handle.asyncReset !== 'function' && 'AsyncWrap#asyncReset',
      typeof handle.getAsyncId !== 'function' && 'AsyncWrap#getAsyncId',
      typeof handle.readStop !== 'function' && 'StreamBase#readStop',
      typeof handle.fd !== 'number' && 'HandleWrap#fd',
    ].filter(Boolean)
    if (missing.length > 0) throw new Error(`Node ${process.version} lacks ${missing.join(', ')}`)
    const fresh = new TCP(0)
    if (fresh.fd !== -1) throw new Error('new TCP(SOCKET) unexpectedly owns an fd')
    fresh.close()
    internals = Object.freeze({
      TCP,
      tcpPrototype: { connect: proto.connect, connect6: proto.connect6 },
      ownerSymbol: ownerSymbol!,
      asyncIdSymbol: asyncIdSymbol!,
      timeoutSymbol: timeoutSymbol!,
      updateTimerSymbol: findSymbol(net.Socket.prototype, 'kUpdateTimer'),
      onStreamRead,
    })
    return internals
  } finally {
    probe.destroy() // closes the probe's fd
  }
}

/** The resource a reused handle is re-initialised with, as node:http's Agent does (ReusedHandle). */
export class RecycledHandleResource {
  constructor(
    readonly type: number,
    readonly handle: TcpHandle,
  ) {}
}

let tcpProvider = -1

/** TCPWRAP's provider type, asked once: every handle lent is a `new TCP(SOCKET)` (no native call per connection). */
function tcpProviderType(handle: TcpHandle): number {
  if (tcpProvider < 0) tcpProvider = handle.getProviderType()
  return tcpProvider
}

/**
 * Gives `socket` the handle, as net's initSocketHandle does, without its `_undestroy()` (which
 * would forget an `end()` the user called while we were still resolving the host).
 * `asyncReset` first: a new async id in the caller's context, so that AsyncLocalStorage in the
 * socket's callbacks is the new tenant's, never the previous one's (asyncResetHandle in
 * lib/_http_agent.js does the same for keep-alive reuse).
 */
export function adoptHandle(socket: net.Socket, handle: TcpHandle, resetAsyncContext: boolean): void {
  const i = nodeInternals()
  const s = socket as unknown as SocketInternals
  if (resetAsyncContext) handle.asyncReset(new RecycledHandleResource(tcpProviderType(handle), handle))
  handle[i.ownerSymbol] = socket
  handle.onread = i.onStreamRead
  // A lent handle never carries a TLS tenant's `reading` accessor (that handle was replaced at
  // release, see recycler.ts): a plain store is enough.
  handle.reading = false
  s._handle = handle
  s[i.asyncIdSymbol] = handle.getAsyncId()
  s._sockname = null
  s._peername = null
}

/**
 * Takes the handle back from `socket` without closing it: callbacks cut and, unless it goes
 * straight to a new owner that reads on (`keepReading`), reading stopped.
 */
export function detachHandle(socket: net.Socket, keepReading = false, tlsWrapped = true): TcpHandle | null {
  const s = socket as unknown as SocketInternals
  const handle = s._handle
  if (!handle) return null
  // (a TLS tenant's handle is replaced at release, rehandle.ts: left as TLS left it)
  const scrub = !tlsWrapped || !wrappedByTls(handle)
  // A handle that goes on reading keeps its epoll registration as it is: no epoll_ctl at all.
  if (!keepReading) handle.readStop()
  // readStop() does not clear the JS flag; a stale `true` would keep the next tenant from reading.
  if (tlsWrapped) resetReading(handle)
  else handle.reading = false
  handle.onread = noop
  s._handle = null
  s._sockname = null
  if (scrub) scrubHandle(handle)
  return handle
}

/** The own properties a pooled handle carries: net's, and this library's hooks. */
const HANDLE_OWN_KEYS = new Set(['onread', 'reading', 'connect', 'connect6', 'setNoDelay'])

/**
 * Makes a handle as the next tenant must meet it: net hands its handle to the socket's user as
 * `socket._handle`, and code (Node's own tests among it) replaces methods on it. A plain handle
 * dies with its socket; a pooled one would carry them to the next connection. Own properties a
 * tenant added are removed, and the library's hooks put back.
 */
function scrubHandle(handle: TcpHandle): void {
  for (const key of Object.keys(handle)) {
    if (!HANDLE_OWN_KEYS.has(key)) delete handle[key as keyof TcpHandle]
  }
  hookConnect(handle)
  rehookNoDelay(handle)
}

function noop(): void {}

/**
 * `handle.reading = false`, also after a TLS tenant: tls.connect({ socket }) turns the handle's
 * `reading` into an accessor onto its TLSWrap (defineHandleReading in lib/_tls_wrap.js), which
 * throws once that TLS socket is gone. The accessor keeps the data property's `configurable`, so it
 * can be turned back into a plain data property. Returns false if it cannot (the handle must then
 * be closed, not reused).
 */
export function resetReading(handle: TcpHandle): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(handle, 'reading')
  if (descriptor && !('value' in descriptor)) {
    if (!descriptor.configurable) return false
    Object.defineProperty(handle, 'reading', { value: false, writable: true, enumerable: true, configurable: true })
    return true
  }
  handle.reading = false
  return true
}

/**
 * Starts libuv reading and sets the JS `reading` flag beside it (net's tryReadStart does both);
 * 0 without a call when the flag says it reads already. Returns readStart's code (UV_EALREADY:
 * libuv was reading all along, handed over without readStop).
 */
export function startReadingFlagged(handle: TcpHandle): number {
  if (handle.reading) return 0
  handle.reading = true
  return handle.readStart()
}

/** Stops reading, cuts the JS callbacks and closes the handle (one retired by a re-handle). */
export function retireHandle(handle: TcpHandle): void {
  handle.readStop()
  handle.onread = noop
  handle.close()
}

/** tls.connect({ socket }) over a connected socket defines `reading` on its handle as an accessor. */
export function wrappedByTls(handle: TcpHandle): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(handle, 'reading')
  return descriptor !== undefined && !('value' in descriptor)
}

// ---- net.Socket's private members -----------------------------------------------------------------

/** The members of a net.Socket this library reads or sets that are not in @types/node. */
interface SocketInternals {
  _handle: TcpHandle | null
  _host: string | null
  _sockname: unknown
  _peername: unknown
  /** set by resetAndDestroy() before it calls destroy() */
  resetAndClosing?: boolean
  connecting: boolean
  _undestroy(): void
  _unrefTimer(): void
  autoSelectFamilyAttemptedAddresses?: string[]
  [key: symbol]: unknown
}

const internalsOf = (socket: net.Socket): SocketInternals => socket as unknown as SocketInternals

/** socket._handle: the libuv handle, null before connect and after close. */
export function socketHandle(socket: net.Socket): TcpHandle | null {
  return internalsOf(socket)._handle
}

/** `connecting` is a plain property Node's net code sets; @types/node declares it read-only. */
export function setConnecting(socket: net.Socket, value: boolean): void {
  internalsOf(socket).connecting = value
}

/** socket._host: the host name net reports in errors and `lookup` events. */
export function setSocketHost(socket: net.Socket, host: string): void {
  internalsOf(socket)._host = host
}

/** Streams' _undestroy(): a destroyed socket made connectable again, as net's connect() does. */
export function undestroy(socket: net.Socket): void {
  internalsOf(socket)._undestroy()
}

/** net's _unrefTimer(): restarts the idle timer (setTimeout) as a connect() does. */
export function unrefTimer(socket: net.Socket): void {
  internalsOf(socket)._unrefTimer()
}

/** Clears socket[kTimeout] (the setTimeout() timer), as net's _destroy does. */
export function clearSocketTimeout(socket: net.Socket): void {
  clearTimeout(internalsOf(socket)[nodeInternals().timeoutSymbol] as NodeJS.Timeout | undefined)
}

/** Whether resetAndDestroy() asked for this destroy (an RST); clears the flag. */
export function takeResetAndClosing(socket: net.Socket): boolean {
  const s = internalsOf(socket)
  if (s.resetAndClosing !== true) return false
  // Cleared only where set: net adds the property in _reset() alone, and a store on every socket
  // would give each destroyed socket one more hidden class for Node's stream code to meet.
  s.resetAndClosing = false
  return true
}

/** socket.autoSelectFamilyAttemptedAddresses (Node 20+), which net fills during Happy Eyeballs. */
export function attemptedAddresses(socket: net.Socket, reset = false): string[] {
  const s = internalsOf(socket)
  if (reset || !s.autoSelectFamilyAttemptedAddresses) s.autoSelectFamilyAttemptedAddresses = []
  return s.autoSelectFamilyAttemptedAddresses
}

const bytesReadGetter = Object.getOwnPropertyDescriptor(net.Socket.prototype, 'bytesRead')!.get!
const bytesDispatchedGetter = Object.getOwnPropertyDescriptor(net.Socket.prototype, '_bytesDispatched')?.get

/** net.Socket's own bytesRead accessor, for a socket on the plain path. */
export function netBytesRead(socket: net.Socket): number {
  return bytesReadGetter.call(socket) as number
}

/** net.Socket's _bytesDispatched accessor (behind bytesWritten), 0 where Node has none. */
export function netBytesDispatched(socket: net.Socket): number {
  return (bytesDispatchedGetter?.call(socket) as number | undefined) ?? 0
}

/**
 * bytesRead and _bytesDispatched (behind bytesWritten) are accessors on net.Socket.prototype;
 * a subclass whose handle's counters run across tenants answers them per tenant.
 */
export function overrideByteCounters(proto: object, read: (this: net.Socket) => number, written: (this: net.Socket) => number): void {
  Object.defineProperty(proto, 'bytesRead', { configurable: true, enumerable: true, get: read })
  Object.defineProperty(proto, '_bytesDispatched', { configurable: true, enumerable: true, get: written })
}

const netGetsocknameMethod = (net.Socket.prototype as unknown as { _getsockname(this: net.Socket): object })._getsockname

/** net.Socket.prototype._getsockname (what localAddress, localPort and address() read), for a subclass that answers first. */
export function netGetsockname(socket: net.Socket): object {
  return netGetsocknameMethod.call(socket)
}
