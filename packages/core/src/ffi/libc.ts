import { koffiRequire } from './koffi-require.js'

/**
 * Raw libc prototypes, loaded through koffi on first use (never at import). Buffers are passed
 * as `void *` so koffi hands the kernel their memory directly, without marshalling copies.
 */
export interface Libc {
  readonly errno: () => number
  readonly socket: (domain: number, type: number, protocol: number) => number
  readonly connect: (fd: number, addr: Buffer, len: number) => number
  readonly shutdown: (fd: number, how: number) => number
  readonly close: (fd: number) => number
  readonly fcntl: (fd: number, cmd: number, arg: number) => number
  readonly getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number
  readonly setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number
  // for the support probe's loopback round trip (internals/probe.ts)
  readonly bind: (fd: number, addr: Buffer, len: number) => number
  readonly listen: (fd: number, backlog: number) => number
  readonly accept4: (fd: number, addr: null, len: null, flags: number) => number
  readonly getsockname: (fd: number, addr: Buffer, len: Buffer) => number
  readonly poll: (fds: Buffer, nfds: number, timeoutMs: number) => number
  readonly getrlimit: (resource: number, rlim: Buffer) => number
  readonly recv: (fd: number, buf: Buffer, len: number, flags: number) => number
}

let libc: Libc | undefined
let loadError: Error | undefined

/** The libc bindings, or the reason they cannot be had on this process (thrown). */
export function loadLibc(): Libc {
  if (libc) return libc
  if (loadError) throw loadError
  try {
    if (process.platform !== 'linux') throw new Error(`AF_UNSPEC dissolution is Linux-only (platform: ${process.platform})`)
    const koffi = koffiRequire('koffi') as typeof import('koffi')
    const lib = koffi.load('libc.so.6')
    libc = {
      errno: () => koffi.errno(),
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      connect: lib.func('int connect(int fd, void *addr, uint32_t len)'),
      shutdown: lib.func('int shutdown(int fd, int how)'),
      close: lib.func('int close(int fd)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
      getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
      bind: lib.func('int bind(int fd, void *addr, uint32_t len)'),
      listen: lib.func('int listen(int fd, int backlog)'),
      accept4: lib.func('int accept4(int fd, void *addr, void *len, int flags)'),
      getsockname: lib.func('int getsockname(int fd, void *addr, void *len)'),
      poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
      getrlimit: lib.func('int getrlimit(int resource, void *rlim)'),
      recv: lib.func('long recv(int fd, void *buf, unsigned long len, int flags)'),
    }
    return libc
  } catch (err) {
    loadError = err instanceof Error ? err : new Error(String(err))
    throw loadError
  }
}

/** Linux constants (include/uapi/linux/*.h); the same on every Linux architecture Node ships for. */
export const AF_UNSPEC = 0
export const AF_INET = 2
export const AF_INET6 = 10
export const SOCK_STREAM = 1
export const SOCK_NONBLOCK = 0o4000
export const SOCK_CLOEXEC = 0o2000000
export const SHUT_WR = 1
export const F_DUPFD_CLOEXEC = 1030
export const SOL_SOCKET = 1
export const SO_ERROR = 4
export const SO_SNDBUF = 7
export const SO_RCVBUF = 8
export const SO_KEEPALIVE = 9
export const SO_LINGER = 13
export const IPPROTO_IP = 0
export const IPPROTO_TCP = 6
export const IPPROTO_IPV6 = 41
export const IP_TOS = 1
export const IPV6_TCLASS = 67
export const TCP_NODELAY = 1
export const TCP_KEEPIDLE = 4
export const TCP_KEEPINTVL = 5
export const TCP_KEEPCNT = 6
export const TCP_INFO = 11
export const POLLIN = 0x001
export const POLLOUT = 0x004
export const RLIMIT_NOFILE = 7
/** struct tcp_info: offset of tcpi_rtt (u32, microseconds), after 8 bytes of u8 fields and 15 u32. */
export const TCPI_RTT_OFFSET = 68
export const MSG_PEEK = 0x2
export const MSG_DONTWAIT = 0x40
export const EAGAIN = 11
