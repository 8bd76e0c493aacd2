import os from 'node:os'
import { AF_INET, POLLIN, POLLOUT, SOCK_CLOEXEC, SOCK_NONBLOCK, loadLibc } from '../ffi/libc.js'
import { closeFd, dissolve, openTcpSocket, shutdownWrite, systemError, takeSocketError, tcpState } from '../ffi/syscalls.js'
import { TcpState, tcpStateName } from '../ffi/tcp-info.js'
import { nodeInternals, RecycledHandleResource } from './node.js'

/** The whole probe gives up after this long (loopback needs well under a millisecond per step). */
const PROBE_BUDGET_MS = 1000

/**
 * Checks by behaviour, once per process, that this kernel and this Node do what recycling relies
 * on: one connect / release / reuse round trip on loopback with the same fd, through blocking
 * koffi syscalls (poll with a timeout), so that it stays synchronous:
 *
 * 1. a listener on 127.0.0.1:0; our fd connects and the listener accepts (ESTABLISHED);
 * 2. the peer closes first: our fd reads CLOSE_WAIT; our FIN (shutdown) takes it to LAST_ACK,
 *    then CLOSE once the peer's kernel acknowledges it;
 * 3. AF_UNSPEC from CLOSE leaves no pending error (SO_ERROR 0);
 * 4. the same fd connects again and is accepted (reuse works);
 * 5. a libuv TCP handle adopts the connected fd (TCP#open), and asyncReset gives it a new async
 *    id, as a reused handle gets per tenant.
 *
 * Throws an Error naming the step that surprised it; the caller then falls back to plain sockets.
 * Prints nothing. Every fd it opens is closed, on success and on failure.
 */
export function probeRoundTrip(): void {
  const deadline = Date.now() + PROBE_BUDGET_MS
  const fds: number[] = []
  const track = (fd: number): number => {
    fds.push(fd)
    return fd
  }
  try {
    const libc = loadLibc()
    const listener = track(openTcpSocket(4))
    const addr = loopback(0)
    if (libc.bind(listener, addr, addr.length) !== 0) throw lastError('bind')
    if (libc.listen(listener, 4) !== 0) throw lastError('listen')
    const len = Buffer.alloc(4)
    len.writeUInt32LE(addr.length)
    if (libc.getsockname(listener, addr, len) !== 0) throw lastError('getsockname')
    const port = addr.readUInt16BE(2)

    const fd = track(openTcpSocket(4))
    let peer = connectAndAccept(fd, listener, port, deadline, track)

    // the peer closes first: our side sees its FIN
    closeOne(peer, fds)
    awaitState(fd, TcpState.CLOSE_WAIT, deadline)
    shutdownWrite(fd)
    awaitState(fd, TcpState.CLOSE, deadline)
    dissolve(fd)
    const pending = takeSocketError(fd)
    if (pending !== 0) throw new Error(`probe: SO_ERROR ${pending} after AF_UNSPEC from CLOSE`)

    // reuse: the same fd connects again
    peer = connectAndAccept(fd, listener, port, deadline, track)
    closeOne(peer, fds)

    // a real TCP handle adopts the fd and takes a new async id
    const { TCP } = nodeInternals()
    const handle = new TCP(0)
    if (handle.open(fd) !== 0) {
      handle.close()
      throw new Error('probe: TCP#open did not adopt a connected fd')
    }
    fds.splice(fds.indexOf(fd), 1) // the handle owns it now
    try {
      if (handle.fd !== fd) throw new Error(`probe: adopted handle reports fd ${handle.fd}, not ${fd}`)
      const before = handle.getAsyncId()
      handle.asyncReset(new RecycledHandleResource(handle.getProviderType(), handle))
      if (handle.getAsyncId() === before) throw new Error('probe: asyncReset kept the async id')
    } finally {
      handle.readStop()
      handle.close()
    }
  } finally {
    for (const fd of fds) {
      try {
        closeFd(fd)
      } catch {
        // already closed
      }
    }
  }
}

function connectAndAccept(fd: number, listener: number, port: number, deadline: number, track: (fd: number) => number): number {
  const libc = loadLibc()
  const addr = loopback(port)
  if (libc.connect(fd, addr, addr.length) !== 0) {
    const errno = libc.errno()
    if (errno !== os.constants.errno.EINPROGRESS) throw systemError('connect', errno, 'probe')
  }
  awaitPoll(fd, POLLOUT, deadline)
  const error = takeSocketError(fd)
  if (error !== 0) throw systemError('connect', error, 'probe')
  awaitPoll(listener, POLLIN, deadline)
  const peer = libc.accept4(listener, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC)
  if (peer < 0) throw lastError('accept4')
  track(peer)
  const state = tcpState(fd)
  if (state !== TcpState.ESTABLISHED) throw new Error(`probe: ${tcpStateName(state)} after connect, not ESTABLISHED`)
  return peer
}

function closeOne(fd: number, fds: number[]): void {
  fds.splice(fds.indexOf(fd), 1)
  closeFd(fd)
}

const pollFd = Buffer.alloc(8) // struct pollfd { int fd; short events; short revents; }

function awaitPoll(fd: number, events: number, deadline: number): void {
  const wait = deadline - Date.now()
  if (wait <= 0) throw new Error('probe: out of time')
  pollFd.writeInt32LE(fd, 0)
  pollFd.writeInt16LE(events, 4)
  pollFd.writeInt16LE(0, 6)
  const n = loadLibc().poll(pollFd, 1, wait)
  if (n < 0) throw lastError('poll')
  if (n === 0) throw new Error(`probe: fd ${fd} not ready within ${PROBE_BUDGET_MS} ms`)
}

/** Waits for a TCP state change that has no poll event of its own (the peer's ACK), a ms at a time. */
function awaitState(fd: number, want: number, deadline: number): void {
  const none = Buffer.alloc(8)
  for (;;) {
    const state = tcpState(fd)
    if (state === want) return
    if (Date.now() >= deadline) throw new Error(`probe: ${tcpStateName(state)}, not ${tcpStateName(want)}, within ${PROBE_BUDGET_MS} ms`)
    loadLibc().poll(none, 0, 1)
  }
}

function loopback(port: number): Buffer {
  const addr = Buffer.alloc(16) // struct sockaddr_in
  addr.writeUInt16LE(AF_INET, 0)
  addr.writeUInt16BE(port, 2)
  addr.writeUInt32BE(0x7f000001, 4)
  return addr
}

function lastError(syscall: string): Error {
  return systemError(syscall, loadLibc().errno(), 'probe')
}
