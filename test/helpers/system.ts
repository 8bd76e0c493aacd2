import { execFileSync } from 'node:child_process'
import { readdirSync, readlinkSync } from 'node:fs'
import type net from 'node:net'

/**
 * Open socket fds of this process (`socket:[inode]` in /proc/self/fd). Sockets only: the test
 * runner opens and closes files and pipes of its own while a test runs.
 */
export function fdCount(): number {
  let n = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++
    } catch {
      // closed between readdir and readlink
    }
  }
  return n
}

/** The kernel socket behind an fd: `socket:[inode]`. */
export function socketInode(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`)
}

export function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } | null })._handle?.fd ?? -1
}

/** TCP sockets in TIME_WAIT towards (dport) or from (sport) a port, as `ss` sees them. */
export function timeWaitCount(port: number, side: 'client' | 'server' = 'client'): number {
  const filter = side === 'client' ? `( dport = :${port} )` : `( sport = :${port} )`
  const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', filter], { encoding: 'utf8' })
  return out.split('\n').filter((l) => l.trim() !== '').length
}

export function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export const isLinux = process.platform === 'linux'
