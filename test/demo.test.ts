import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ensureBuilt, repoRoot } from './helpers/built.js'
import { isLinux } from './helpers/system.js'

interface Side {
  connections: number
  failed: number
  socketsCreated: number
  distinctSockets: number
  reusedConnections: number
  timeWait: number | null
  portsPeak: number | null
  perSecond: number
  cpuUsPerConnection: number
  recycler: { connections: number; fdsCreated: number; reusedConnections: number; peerClosedFirst: number; finSentFirst: number } | null
}

interface Report {
  quick: boolean
  recycling: { supported: boolean }
  backends: { line: number; http: number; processes: number }
  rounds: { round: number; mode: 'plain' | 'recycled'; n: number; seconds: number; failed: number }[]
  sides: { plain: Side; recycled: Side }
  ratio: { median: number; min: number; max: number; rounds: number[] }
  portsOverTime: { t: number; plain: number; recycled: number }[]
  exhaustion: { skipped?: string }
}

function runDemo(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'examples', 'demo', 'index.mjs'), ...args], { cwd: repoRoot })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) => resolve({ code, out }))
  })
}

const hasSs = spawnSync('ss', ['-V']).status === 0

describe.runIf(isLinux)('npm run demo -- --quick', () => {
  // Measured on a loaded 2-core machine: 11-18 s for the demo, ~100 s more where ensureBuilt must
  // build core and http-adapter first. Not a timed test: the bound only stops a hang.
  it('prints its report, and the report\'s figures agree with each other', { timeout: 300_000 }, async () => {
    ensureBuilt('core')
    ensureBuilt('http-adapter')
    const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-demo-test-'))
    try {
      const file = join(dir, 'report.json')
      const { code, out } = await runDemo(['--quick', '--json', file])
      expect(code, out).toBe(0)
      for (const label of ['connections made', 'new sockets created', 'client TIME_WAIT left behind', 'local ports in use, peak', 'client CPU per connection', 'connections per second', 'What this run shows', 'Port exhaustion: skipped in --quick']) {
        expect(out).toContain(label)
      }
      const r = JSON.parse(readFileSync(file, 'utf8')) as Report
      expect(r.quick).toBe(true)
      expect(r.backends).toMatchObject({ line: 32, http: 32, processes: 2 })
      expect(r.exhaustion.skipped).toBeTypeOf('string')

      const rounds = r.rounds.length / 2
      expect(rounds).toBeGreaterThanOrEqual(1)
      for (const mode of ['plain', 'recycled'] as const) {
        const s = r.sides[mode]
        const own = r.rounds.filter((x) => x.mode === mode)
        expect(own).toHaveLength(rounds)
        expect(s.connections).toBe(own.reduce((sum, x) => sum + x.n, 0))
        expect(s.failed).toBe(0)
        expect(s.perSecond).toBeGreaterThan(0)
        expect(s.cpuUsPerConnection).toBeGreaterThan(0)
        // Each connection's kernel socket was seen (its inode), whichever side made it.
        expect(s.distinctSockets).toBeGreaterThan(0)
        expect(s.distinctSockets).toBeLessThanOrEqual(s.connections)
        if (hasSs) {
          expect(s.timeWait).toBeTypeOf('number')
          expect(s.timeWait).toBeLessThanOrEqual(s.connections)
          expect(s.portsPeak).toBeTypeOf('number')
        }
      }
      // Plain: a new kernel socket for every connection, none reused.
      expect(r.sides.plain.socketsCreated).toBe(r.sides.plain.connections)
      expect(r.sides.plain.distinctSockets).toBe(r.sides.plain.connections)
      expect(r.sides.plain.reusedConnections).toBe(0)
      // Recycled: the recycler's own counts cover exactly the connections the rounds made.
      const rec = r.sides.recycled
      expect(rec.recycler?.connections).toBe(rec.connections)
      expect(rec.socketsCreated).toBe(rec.recycler?.fdsCreated)
      expect(rec.reusedConnections).toBeLessThanOrEqual(rec.connections)
      if (r.recycling.supported) {
        // 16 in flight over hundreds of connections: most connections ride a socket used before.
        expect(rec.reusedConnections).toBeGreaterThan(rec.connections / 2)
        expect(rec.distinctSockets).toBeLessThan(rec.connections)
      }
      // The ratio printed is the median of the per-round ratios.
      expect(r.ratio.rounds).toHaveLength(rounds)
      expect(r.ratio.median).toBeGreaterThanOrEqual(r.ratio.min)
      expect(r.ratio.median).toBeLessThanOrEqual(r.ratio.max)
      expect(out).toContain(`${r.ratio.median.toFixed(2)}x`)
      if (hasSs) expect(r.portsOverTime.length).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
