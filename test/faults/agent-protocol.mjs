// Shared by the client and server agents (plain ESM run by node inside a namespace, no build step).
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

/** Deterministic bytes for a seed (xorshift32): both sides derive the body, the client compares. */
export function pattern(seed, size) {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 0x9e3779b9
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** `Tcp:` counters of this process's network namespace (/proc/self/net/snmp), or of process `pid`'s. */
export function tcpCounters(pid = 'self') {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'))
  const names = lines[0].split(/\s+/).slice(1)
  const values = lines[1].split(/\s+/).slice(1).map(Number)
  return Object.fromEntries(names.map((n, i) => [n, values[i]]))
}

/** The kernel's TCP states by number, as /proc/net/tcp's `st` column gives them. */
export const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING']

/**
 * IPv4 TCP sockets of this namespace (or of process `pid`'s) by state (/proc/<pid>/net/tcp, TIME_WAIT
 * included), loopback left out: the labs' traffic crosses the relay, and the recycler's one-time
 * support probe (a connect / release / reuse round trip on 127.0.0.1) leaves its listener side's
 * TIME_WAITs there.
 */
export function tcpSockets(pid = 'self') {
  const rows = readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1).filter((l) => l.trim() !== '')
    .filter((l) => !l.trim().split(/\s+/)[1].startsWith('0100007F:'))
  const counts = {}
  const list = []
  for (const row of rows) {
    const f = row.trim().split(/\s+/)
    const state = TCP_STATES[Number.parseInt(f[3], 16)] ?? f[3]
    counts[state] = (counts[state] ?? 0) + 1
    const port = (hex) => Number.parseInt(hex.split(':')[1], 16)
    list.push({ state, localPort: port(f[1]), remotePort: port(f[2]) })
  }
  return { counts, list }
}

/**
 * JSON-line RPC on stdin/stdout: `{ id, op, args }` in, `{ id, ok, result | error }` out.
 * Prints `{ ready: ... }` once the agent is up.
 */
export function serve(ops, ready) {
  const send = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`)
  createInterface({ input: process.stdin }).on('line', async (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    const op = ops[msg.op]
    try {
      if (!op) throw new Error(`unknown op ${msg.op}`)
      send({ id: msg.id, ok: true, result: (await op(msg.args ?? {})) ?? null })
    } catch (err) {
      send({ id: msg.id, ok: false, error: { message: err?.message ?? String(err), code: err?.code, stack: err?.stack } })
    }
  })
  process.stdin.on('end', () => process.exit(0))
  send({ ready })
}
