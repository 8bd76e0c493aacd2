// Scenario 4b: HTTP reverse-proxy throughput and p99 (the http issue's bench): the reverse proxy of
// examples/reverse-proxy under autocannon, upstream connections plain vs recycled, each upstream
// answering `Connection: close`. The measurement is bench/http-proxy.mjs (the http contributor's),
// run here as a child process; it prints one JSON document. Skipped while it does not exist.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { target } from '../lib/ab.mjs'
import { BENCH_DIR, runJson } from '../lib/procs.mjs'
import { SkipError } from '../lib/servers.mjs'

export const name = 'http-proxy'
export const title = 'HTTP reverse proxy: throughput and p99 (bench/http-proxy.mjs)'

export async function run({ quick, rounds, log }) {
  const script = join(BENCH_DIR, 'http-proxy.mjs')
  if (!existsSync(script)) throw new SkipError('bench/http-proxy.mjs is not written yet (the http issue)')
  // Its own A/B rounds of `duration` seconds per side and connection count: 5 rounds × 2 sides ×
  // 2 counts × 3 s is a minute; --quick: 3 × 2 × 2 × 1 s.
  const args = [script, '--rounds', String(Math.min(rounds, 5)), '--duration', quick ? '1' : '3', '--warmup', '1', '--connections', '1,16']
  log(`http-proxy: node bench/http-proxy.mjs ${args.slice(1).join(' ')}`)
  const raw = await runJson(process.execPath, args, { name: 'bench/http-proxy.mjs', timeoutMs: 300_000 })
  if (!Array.isArray(raw.results)) throw new Error(`bench/http-proxy.mjs printed no "results" array: ${JSON.stringify(raw).slice(0, 300)}`)
  const proxies = raw.proxies ?? {}
  const tw = typeof proxies.plain?.clientTimeWait === 'number'
    ? { n: proxies.plain?.upstreamConnections ?? null, plain: proxies.plain.clientTimeWait, recycled: proxies.recycled?.clientTimeWait ?? null }
    : null
  const targets = []
  const rows = []
  for (const r of raw.results) {
    const ratio = r.ratio && typeof r.ratio.median === 'number' ? r.ratio : null
    const t = target(`HTTP proxy recycled / plain req/s, ${r.connections} connection(s)`, ratio?.median ?? null, '>=', 1.0)
    targets.push(t)
    const p99 = (side) => r.median?.[side]?.p99Ms
    rows.push({
      scenario: `HTTP reverse proxy, ${r.connections} client connection(s)`,
      unit: 'req/s',
      plain: r.median?.plain?.rps ?? null,
      recycled: r.median?.recycled?.rps ?? null,
      ratio,
      extra: typeof p99('plain') === 'number' ? `p99 ${p99('plain')} → ${p99('recycled')} ms` : '',
      timeWait: tw,
      target: t,
    })
  }
  if (tw && typeof tw.recycled === 'number') targets.push(target('HTTP proxy upstream-side client TIME_WAIT, recycled', tw.recycled, '==', 0, { unit: 'count' }))
  const notes = []
  if (tw) notes.push(`TIME_WAIT here is the proxy's, towards its upstreams, counted once after all rounds (${tw.n ?? '?'} upstream connections per side, the last 60 s of them still in the table).`)
  return { raw, targets, notes, rows }
}
