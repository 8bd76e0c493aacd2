import { closeFd, dupFd } from './ffi/syscalls.js'
import { nodeInternals, retireHandle } from './internals/node.js'
import { closePooled } from './pool-hooks.js'
import type { PooledFd } from './pooled-fd.js'
import type { RecyclerState } from './recycler-state.js'

/**
 * After a TLS tenant: dup(fd) onto a fresh handle and close the old one (the socket lives on
 * through the dup). TLSWrap's end() shut the old libuv handle for good (UV_HANDLE_SHUT), which no
 * JS call resets. False when the fd had to be closed instead.
 */
export function rehandle(r: RecyclerState, pooled: PooledFd): boolean {
  const fd = pooled.fd
  if (fd < 0) return true
  const { TCP } = nodeInternals()
  let dup: number
  try {
    dup = dupFd(fd)
  } catch (err) {
    r.releaseFailed(pooled, err)
    closePooled(r, pooled, 'dup for a new handle failed')
    return false
  }
  const handle = new TCP(0)
  if (handle.open(dup) !== 0) {
    closeFd(dup)
    handle.close()
    closePooled(r, pooled, 'a new handle could not adopt the socket')
    return false
  }
  handle.unref()
  retireHandle(pooled.replaceHandle(handle))
  return true
}
