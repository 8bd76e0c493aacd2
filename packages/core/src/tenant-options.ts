import { readFileSync } from 'node:fs'
import {
  IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IP_TOS, IPV6_TCLASS, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPCNT, TCP_KEEPIDLE,
  TCP_KEEPINTVL, TCP_NODELAY,
} from './ffi/libc.js'
import { getIntOption, getLinger, resetLinger, setIntOption } from './ffi/syscalls.js'
import { Dirty, type PooledFd } from './pooled-fd.js'

/**
 * Socket options a tenant changed (PooledFd#dirty, tracked by RecycledSocket) are reset before the
 * next tenant, except those in `keep` (the next tenant sets them itself). With `verify`, they are
 * read back with getsockopt first, for code that set them on the fd directly.
 */
export function resetTenantOptions(pooled: PooledFd, keep: number, verify: boolean): void {
  const fd = pooled.fd
  if (fd < 0) return
  let dirty = pooled.dirty
  const ipLevel = pooled.family === 6 ? IPPROTO_IPV6 : IPPROTO_IP
  const tosOption = pooled.family === 6 ? IPV6_TCLASS : IP_TOS
  if (verify) {
    const noDelay = getIntOption(fd, IPPROTO_TCP, TCP_NODELAY) !== 0
    // the kernel's word, for a tenant that set it on the fd directly (internals/nodelay-hook.ts)
    pooled.noDelay = noDelay ? 1 : 0
    if (noDelay) dirty |= Dirty.NODELAY
    if (getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE) !== 0) dirty |= Dirty.KEEPALIVE
    const linger = getLinger(fd)
    if (linger.onoff || linger.seconds !== 0) dirty |= Dirty.LINGER
    if (getIntOption(fd, ipLevel, tosOption) !== 0) dirty |= Dirty.TOS
  }
  dirty &= ~keep
  pooled.dirty = 0
  if (dirty === 0) return
  // Through the handle where libuv keeps a flag of its own (UV_HANDLE_TCP_NODELAY, ..._KEEPALIVE).
  if (dirty & Dirty.NODELAY) pooled.handle.setNoDelay(false)
  if (dirty & Dirty.KEEPALIVE) {
    pooled.handle.setKeepAlive(false, 0)
    const k = keepaliveDefaults()
    setIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, k.idle)
    setIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, k.interval)
    setIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, k.count)
  }
  if (dirty & Dirty.TOS) setIntOption(fd, ipLevel, tosOption, 0)
  if (dirty & Dirty.LINGER) resetLinger(fd)
}

let keepalive: { idle: number; interval: number; count: number } | undefined

/** The kernel's keepalive defaults (net.ipv4.tcp_keepalive_*), restored after a tenant changed them. */
export function keepaliveDefaults(): { idle: number; interval: number; count: number } {
  if (keepalive) return keepalive
  const read = (name: string, fallback: number): number => {
    try {
      const n = Number.parseInt(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8'), 10)
      return Number.isInteger(n) && n > 0 ? n : fallback
    } catch {
      return fallback
    }
  }
  keepalive = { idle: read('tcp_keepalive_time', 7200), interval: read('tcp_keepalive_intvl', 75), count: read('tcp_keepalive_probes', 9) }
  return keepalive
}
