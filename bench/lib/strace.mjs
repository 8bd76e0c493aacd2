// Syscalls per connection by differential counting: run a client for N1 and N2
// connections under `strace -f -c`, subtract the per-syscall call counts, divide by N2 - N1.
// Start-up (loading Node, koffi, the JIT's threads) cancels out.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from './cleanup.mjs'
import { runJson } from './procs.mjs'

export function straceAvailable() {
  const r = spawnSync('strace', ['-V'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return { ok: false, reason: 'strace is not installed (apt-get install strace)' }
  // ptrace may be forbidden in a container: try it once.
  const t = spawnSync('strace', ['-f', '-c', '-o', '/dev/null', 'true'], { encoding: 'utf8' })
  if (t.status !== 0) return { ok: false, reason: `strace cannot trace here: ${t.stderr.trim().split('\n')[0]}` }
  return { ok: true, version: r.stdout.split('\n')[0] }
}

/** Parses `strace -c` output into { syscall: calls }. */
export function parseStraceSummary(text) {
  const calls = {}
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/)
    if (t.length < 5 || !/^\d/.test(t[0])) continue
    const name = t[t.length - 1]
    if (name === 'total') continue
    const n = Number(t[3])
    if (Number.isFinite(n)) calls[name] = (calls[name] ?? 0) + n
  }
  return calls
}

/** Runs `cmd args` under strace -f -c; returns { calls, result } (result: the command's JSON). */
export async function straceCount(cmd, args) {
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-strace-'))
  const drop = onCleanup(`strace dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  try {
    const file = join(dir, 'out.txt')
    const result = await runJson('strace', ['-f', '-c', '-o', file, cmd, ...args], { name: `strace ${cmd}`, timeoutMs: 300_000 })
    return { calls: parseStraceSummary(readFileSync(file, 'utf8')), result }
  } finally {
    drop()
  }
}

/**
 * Syscalls per connection between two runs: `make(n)` gives [cmd, args] for n connections.
 * @returns {Promise<{ perConnection: number, bySyscall: Record<string, number>, n: [number, number] }>}
 */
export async function syscallsPerConnection(make, n1, n2) {
  const a = await straceCount(...make(n1))
  const b = await straceCount(...make(n2))
  const failed = (a.result.failed ?? a.result.failures ?? 0) + (b.result.failed ?? b.result.failures ?? 0)
  const bySyscall = {}
  let total = 0
  for (const name of new Set([...Object.keys(a.calls), ...Object.keys(b.calls)])) {
    const d = ((b.calls[name] ?? 0) - (a.calls[name] ?? 0)) / (n2 - n1)
    total += d
    if (Math.abs(d) >= 0.005) bySyscall[name] = Number(d.toFixed(3))
  }
  return { perConnection: Number(total.toFixed(3)), bySyscall, n: [n1, n2], failed }
}
