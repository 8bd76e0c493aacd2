import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import type net from 'node:net'
import { TCP_STATES } from '../faults/agent-protocol.mjs'
import { SOL_SOCKET } from '../../packages/core/src/ffi/libc.js'
import { getIntOption, tcpState } from '../../packages/core/src/ffi/syscalls.js'

/** This process's socket fds and their targets (`socket:[inode]`), one entry per fd (a dup counts again). */
function socketFds(): { fd: number; target: string }[] {
  const fds: { fd: number; target: string }[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith('socket:')) fds.push({ fd: Number(fd), target })
    } catch {
      // closed between readdir and readlink
    }
  }
  return fds
}

/**
 * Open socket fds of this process (`socket:[inode]` in /proc/self/fd). Sockets only: the test
 * runner opens and closes files and pipes of its own while a test runs.
 */
export function fdCount(): number {
  return socketFds().length
}

/** The kernel sockets this process has open now (`socket:[inode]`), a baseline for socketsSince(). */
export function openSockets(): Set<string> {
  return new Set(socketFds().map((s) => s.target))
}

/** The kernel sockets open now that were not open at `baseline`. */
function newSockets(baseline: ReadonlySet<string>): string[] {
  return [...openSockets()].filter((socket) => !baseline.has(socket))
}

/**
 * How many of this process's open sockets were not open at `baseline` (from openSockets()): the
 * ones leaked, or not closed yet. A socket open at the baseline that closes meanwhile (an earlier
 * test's, closing late) neither counts nor hides a new one, as it would in a difference of counts.
 */
export function socketsSince(baseline: ReadonlySet<string>): number {
  return newSockets(baseline).length
}

/**
 * The sockets open now that were not at `baseline`, each as the kernel's socket tables show it
 * (`tcp 127.0.0.1:41000 -> 127.0.0.1:5432 ESTABLISHED`), for a failed leak check's message.
 */
export function socketsOpenedSince(baseline: ReadonlySet<string>): string[] {
  const inodes = new Map(newSockets(baseline).map((socket) => [socket.slice('socket:['.length, -1), socket]))
  const found: string[] = []
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6', 'unix']) {
    let text = ''
    try {
      text = readFileSync(`/proc/self/net/${table}`, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      const inode = table === 'unix' ? f[6] : f[9]
      if (!inode || !inodes.has(inode)) continue
      inodes.delete(inode)
      found.push(table === 'unix' ? `unix ${f[7] ?? '(unnamed)'}` : `${table} ${hexAddress(f[1]!)} -> ${hexAddress(f[2]!)} ${TCP_STATES[parseInt(f[3]!, 16)] ?? f[3]}`)
    }
  }
  for (const [inode, socket] of inodes) found.push(`${socket} (in no tcp, udp or unix table: ${describeUnlisted(inode)})`)
  return found
}

const SO_TYPE = 3
const SO_PROTOCOL = 38
const SO_DOMAIN = 39
const DOMAINS: Record<number, string> = { 1: 'unix', 2: 'inet', 10: 'inet6', 16: 'netlink', 17: 'packet' }
const TYPES: Record<number, string> = { 1: 'stream', 2: 'dgram', 3: 'raw', 5: 'seqpacket' }

/**
 * A socket no table lists (an unbound TCP socket, fresh from socket(2) or dissolved; a netlink
 * socket): its fds, with domain, type and, for TCP, its state, read from the fd itself.
 */
function describeUnlisted(inode: string): string {
  const parts: string[] = []
  for (const { fd, target } of socketFds()) {
    if (target !== `socket:[${inode}]`) continue
    try {
      const domain = getIntOption(fd, SOL_SOCKET, SO_DOMAIN)
      const type = getIntOption(fd, SOL_SOCKET, SO_TYPE)
      const protocol = getIntOption(fd, SOL_SOCKET, SO_PROTOCOL)
      const tcp = (domain === 2 || domain === 10) && type === 1 ? ` ${TCP_STATES[tcpState(fd)] ?? 'state ?'}` : ''
      parts.push(`fd ${fd}: ${DOMAINS[domain] ?? domain} ${TYPES[type] ?? type} protocol ${protocol}${tcp}`)
    } catch (err) {
      parts.push(`fd ${fd}: ${(err as Error).message}`)
    }
  }
  return parts.join('; ') || 'closed meanwhile'
}

/** `0100007F:1F90` -> `127.0.0.1:8080` (IPv4; IPv6 addresses stay in hex). */
function hexAddress(text: string): string {
  const [addr = '', port = '0'] = text.split(':')
  const p = parseInt(port, 16)
  if (addr.length !== 8) return `[${addr}]:${p}`
  const bytes = [6, 4, 2, 0].map((i) => parseInt(addr.slice(i, i + 2), 16))
  return `${bytes.join('.')}:${p}`
}

/** The kernel socket behind an fd: `socket:[inode]`. */
export function socketInode(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`)
}

export function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } | null })._handle?.fd ?? -1
}

/**
 * TCP sockets in TIME_WAIT towards (dport) or from (sport) a port, as `ss` sees them. With
 * `peers` (the client ports of this server's own connections, `srv.sockets.map((s) => s.remotePort)`)
 * only this test's connections count: a server on port 0 can get the number of an earlier test's
 * server whose TIME_WAIT entries are still in the table (60 s). With `since` (a timeWaitSnapshot()
 * taken before the test) the entries listed then do not count.
 */
export function timeWaitCount(port: number, side: 'client' | 'server' = 'client', peers?: Iterable<number | undefined> | null, since?: Set<string>): number {
  const lines = timeWaitEntries(port, side).filter((l) => !since?.has(l))
  if (!peers) return lines.length
  const wanted = new Set([...peers].filter((p): p is number => p !== undefined))
  // "Local:Port Peer:Port": the client's port is local (client side) or peer (server side)
  const clientPort = (line: string): number => Number(line.split(' ')[side === 'client' ? 0 : 1]!.split(':').pop())
  return lines.filter((l) => wanted.has(clientPort(l))).length
}

/**
 * The TIME_WAIT entries towards (client) or from (server) a port, one line each
 * (`local peer`): taken before a test, and passed to timeWaitCount as `since`, they leave out the
 * entries that were there already, where the test cannot name its own client ports (nginx's).
 */
export function timeWaitSnapshot(port: number, side: 'client' | 'server' = 'client'): Set<string> {
  return new Set(timeWaitEntries(port, side))
}

/**
 * The addresses the tests' servers listen on. Entries towards another address with the same port
 * number are someone else's: the demo's backends (its smoke test runs beside these tests) listen
 * on 127.64-223.x.y, on ports from the same ephemeral range as these servers' port-0 picks, and its
 * plain client leaves thousands of TIME_WAIT entries whose client ports can match a test's.
 */
const TEST_SERVER_ADDRESSES = new Set(['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]'])

function timeWaitEntries(port: number, side: 'client' | 'server'): string[] {
  const filter = side === 'client' ? `( dport = :${port} )` : `( sport = :${port} )`
  const out = execFileSync('ss', ['-Htan', 'state', 'time-wait', filter], { encoding: 'utf8' })
  // -H -n: "Recv-Q Send-Q Local:Port Peer:Port": the addresses name the entry
  const entries = out.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).slice(2, 4))
  return entries
    .filter((e) => {
      const server = e[side === 'client' ? 1 : 0]!
      return TEST_SERVER_ADDRESSES.has(server.slice(0, server.lastIndexOf(':')))
    })
    .map((e) => e.join(' '))
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
