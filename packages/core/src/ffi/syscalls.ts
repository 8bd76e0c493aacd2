import { getSystemErrorName } from 'node:util'
import {
  AF_INET, AF_INET6, EAGAIN, F_DUPFD_CLOEXEC, MSG_DONTWAIT, MSG_PEEK, IPPROTO_TCP, SHUT_WR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET,
  SO_ERROR, SO_LINGER, TCP_INFO, RLIMIT_NOFILE, TCPI_RTT_OFFSET, loadLibc,
} from './libc.js'

/**
 * Typed wrappers over the raw prototypes. A `-1` from the kernel becomes a Node-style system
 * error here and nowhere else: `code` ('EMFILE'), `errno` (negative, as libuv reports it) and
 * `syscall`, the shape a plain net.Socket gives.
 */
export interface SystemError extends Error {
  code: string
  errno: number
  syscall: string
}

export function systemError(syscall: string, errno: number, detail?: string): SystemError {
  const code = safeErrorName(-Math.abs(errno))
  const err = new Error(`${syscall} ${code}${detail ? ` ${detail}` : ''}`) as SystemError
  err.code = code
  err.errno = -Math.abs(errno)
  err.syscall = syscall
  return err
}

function safeErrorName(errno: number): string {
  try {
    return getSystemErrorName(errno)
  } catch {
    return `Unknown system error ${errno}`
  }
}

function check(ret: number, syscall: string): number {
  if (ret === -1) throw systemError(syscall, loadLibc().errno())
  return ret
}

// One set of scratch buffers: JS runs these calls on one thread, one at a time.
const UNSPEC_ADDR = Buffer.alloc(16) // struct sockaddr with sa_family = AF_UNSPEC (0)
const intValue = Buffer.alloc(4)
const optLen = Buffer.alloc(4)
const lingerValue = Buffer.alloc(8)
const stateValue = Buffer.alloc(1)

/** socket(2) for a TCP stream of the given IP version, non-blocking and close-on-exec. */
export function openTcpSocket(family: 4 | 6): number {
  const domain = family === 6 ? AF_INET6 : AF_INET
  return check(loadLibc().socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), 'socket')
}

/**
 * connect(fd, {sa_family: AF_UNSPEC}): the kernel's tcp_disconnect(). The socket becomes
 * unconnected, like one fresh from socket(2). It sends RST only from states that need one
 * (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1/2, SYN_RECV); from CLOSE or LAST_ACK it is silent.
 */
export function dissolve(fd: number): void {
  check(loadLibc().connect(fd, UNSPEC_ADDR, UNSPEC_ADDR.length), 'connect')
}

/** shutdown(fd, SHUT_WR): our FIN, sent by us and not by libuv (uv_shutdown marks the handle shut for good). */
export function shutdownWrite(fd: number): void {
  check(loadLibc().shutdown(fd, SHUT_WR), 'shutdown')
}

/** A second fd for the same socket, close-on-exec (fcntl F_DUPFD_CLOEXEC). */
export function dupFd(fd: number): number {
  return check(loadLibc().fcntl(fd, F_DUPFD_CLOEXEC, 0), 'fcntl')
}

export function closeFd(fd: number): void {
  check(loadLibc().close(fd), 'close')
}

/** The first byte of TCP_INFO: tcpi_state. The kernel copies min(optlen, sizeof) bytes. */
export function tcpState(fd: number): number {
  optLen.writeUInt32LE(1, 0)
  check(loadLibc().getsockopt(fd, IPPROTO_TCP, TCP_INFO, stateValue, optLen), 'getsockopt')
  return stateValue[0]!
}

/** What the kernel holds from the peer that nobody has read yet (peekPeer). */
export const PeerPeek = {
  /** no byte and no FIN yet */
  NOTHING: 0,
  /** bytes unread: a close() now would make the kernel send an RST instead of a FIN (tcp_close: "data was lost") */
  DATA: 1,
  /** the peer's FIN, with no byte before it unread */
  FIN: 2,
  /** an error instead (a reset; ENOTCONN): the connection is gone. recv consumed a pending SO_ERROR. */
  GONE: 3,
} as const
export type PeerPeek = (typeof PeerPeek)[keyof typeof PeerPeek]

const peekByte = Buffer.alloc(1)

/**
 * One recv(MSG_PEEK | MSG_DONTWAIT) of one byte: unread data, the peer's FIN, nothing yet, or an
 * error. Nothing is taken from the receive queue.
 */
export function peekPeer(fd: number): PeerPeek {
  const n = loadLibc().recv(fd, peekByte, 1, MSG_PEEK | MSG_DONTWAIT)
  if (n > 0) return PeerPeek.DATA
  if (n === 0) return PeerPeek.FIN
  return loadLibc().errno() === EAGAIN ? PeerPeek.NOTHING : PeerPeek.GONE
}

/** Reads and thereby clears SO_ERROR (sock_error() exchanges it with 0). Returns the errno or 0. */
export function takeSocketError(fd: number): number {
  return getIntOption(fd, SOL_SOCKET, SO_ERROR)
}

export function getIntOption(fd: number, level: number, name: number): number {
  optLen.writeUInt32LE(4, 0)
  check(loadLibc().getsockopt(fd, level, name, intValue, optLen), 'getsockopt')
  return intValue.readInt32LE(0)
}

export function setIntOption(fd: number, level: number, name: number, value: number): void {
  intValue.writeInt32LE(value, 0)
  check(loadLibc().setsockopt(fd, level, name, intValue, 4), 'setsockopt')
}

export interface Linger {
  onoff: boolean
  seconds: number
}

export function getLinger(fd: number): Linger {
  optLen.writeUInt32LE(8, 0)
  check(loadLibc().getsockopt(fd, SOL_SOCKET, SO_LINGER, lingerValue, optLen), 'getsockopt')
  return { onoff: lingerValue.readInt32LE(0) !== 0, seconds: lingerValue.readInt32LE(4) }
}

export function setLinger(fd: number, linger: Linger): void {
  lingerValue.writeInt32LE(linger.onoff ? 1 : 0, 0)
  lingerValue.writeInt32LE(linger.seconds, 4)
  check(loadLibc().setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerValue, 8), 'setsockopt')
}

const infoValue = Buffer.alloc(TCPI_RTT_OFFSET + 4)
const rlimValue = Buffer.alloc(16)

/** The connection's smoothed RTT in microseconds (TCP_INFO tcpi_rtt); 0 before any sample. */
export function tcpRttUs(fd: number): number {
  optLen.writeUInt32LE(infoValue.length, 0)
  check(loadLibc().getsockopt(fd, IPPROTO_TCP, TCP_INFO, infoValue, optLen), 'getsockopt')
  // an older kernel may copy fewer bytes than asked (it writes the length it copied)
  return optLen.readUInt32LE(0) >= infoValue.length ? infoValue.readUInt32LE(TCPI_RTT_OFFSET) : 0
}

/** The soft RLIMIT_NOFILE of this process (getrlimit; struct rlimit is two 64-bit values on Linux/64-bit). */
export function openFileLimit(): number {
  check(loadLibc().getrlimit(RLIMIT_NOFILE, rlimValue), 'getrlimit')
  const soft = rlimValue.readBigUInt64LE(0)
  return soft > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(soft)
}

/**
 * SO_LINGER back to a fresh socket's { off, 0 }. sock_setsockopt stores l_linger only when l_onoff
 * is set (an { off, n } write leaves the old seconds in sk_lingertime, and getsockopt reports them):
 * { on, 0 } first zeroes them, then { off, 0 } turns lingering off. Nothing closes in between.
 */
export function resetLinger(fd: number): void {
  setLinger(fd, { onoff: true, seconds: 0 })
  setLinger(fd, { onoff: false, seconds: 0 })
}
