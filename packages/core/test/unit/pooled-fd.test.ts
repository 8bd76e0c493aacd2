import { describe, expect, it } from 'vitest'
import { dupFd, openTcpSocket } from '../../src/ffi/syscalls.js'
import { nodeInternals } from '../../src/internals/node.js'
import { PooledFd } from '../../src/pooled-fd.js'
import { isLinux } from '../../../../test/helpers/system.js'

// PooledFd#fd keeps the handle's kernel fd once it has one (handle.fd is a native accessor): it
// must still follow the handle where libuv changes it (a fresh handle's first socket, close) and
// where the recycler moves the socket to another handle.
describe.runIf(isLinux)('PooledFd#fd', () => {
  it('follows a fresh handle to its first socket, keeps it, and reads -1 once closed', () => {
    const { TCP } = nodeInternals()
    const handle = new TCP(0)
    const pooled = new PooledFd(handle, 4, 'fresh')
    expect(pooled.fd).toBe(-1)
    const fd = openTcpSocket(4)
    expect(handle.open(fd)).toBe(0)
    expect(pooled.fd).toBe(fd)
    expect(pooled.fd).toBe(handle.fd)
    pooled.setState('closed', 'test')
    handle.close()
    expect(handle.fd).toBe(-1)
    expect(pooled.fd).toBe(-1)
    expect(pooled.lastFd).toBe(fd)
  })

  it('answers the new handle after replaceHandle()', () => {
    const { TCP } = nodeInternals()
    const first = new TCP(0)
    expect(first.open(openTcpSocket(4))).toBe(0)
    const pooled = new PooledFd(first, 4, 'idle')
    const oldFd = pooled.fd
    const second = new TCP(0)
    expect(second.open(dupFd(oldFd))).toBe(0)
    pooled.replaceHandle(second).close()
    expect(pooled.fd).toBe(second.fd)
    expect(pooled.fd).not.toBe(oldFd)
    pooled.setState('closed', 'test')
    second.close()
    expect(pooled.fd).toBe(-1)
  })
})
