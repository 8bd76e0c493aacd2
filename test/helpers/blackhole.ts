import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/**
 * A listening TCP socket on 127.0.0.1 with backlog 0 that never accepts: once its accept queue
 * holds one connection, the kernel drops further SYNs, so connects to it hang in SYN_SENT
 * (a connect timeout on loopback, no network namespace needed).
 */
export function blackholeListener(): { port: number; close(): void } {
  const koffi = require('koffi') as typeof import('koffi')
  const lib = koffi.load('libc.so.6')
  const socket = lib.func('int socket(int, int, int)')
  const bind = lib.func('int bind(int, void *, uint32_t)')
  const listen = lib.func('int listen(int, int)')
  const getsockname = lib.func('int getsockname(int, void *, void *)')
  const close = lib.func('int close(int)')
  const fd = socket(2, 1 | 0o2000000, 0)
  const addr = Buffer.alloc(16)
  addr.writeUInt16LE(2, 0) // AF_INET
  addr.writeUInt16BE(0, 2) // port 0
  addr.writeUInt32BE(0x7f000001, 4) // 127.0.0.1
  if (bind(fd, addr, 16) !== 0 || listen(fd, 0) !== 0) throw new Error(`blackhole listener: errno ${koffi.errno()}`)
  const len = Buffer.alloc(4)
  len.writeUInt32LE(16, 0)
  getsockname(fd, addr, len)
  return { port: addr.readUInt16BE(2), close: () => void close(fd) }
}
