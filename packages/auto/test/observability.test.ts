// The recycler's stats() through the real OpenTelemetry SDK and the real prom-client, after real
// recycled connections to a real redis-server; FDRECYCLE_REPORT's line from a spawned process.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { InvalidArgumentError, InvalidOptionError, SocketRecycler, type RecyclerStats } from '@fdrecycle/core'
import { metrics } from '@opentelemetry/api'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import client from 'prom-client'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { ensureBuilt, repoRoot } from '../../../test/helpers/built.js'
import { recyclingSupported } from '../../../test/helpers/run-mode.js'
import {
  METRICS, VERSION, installOpenTelemetry, installPromClient, installReport, isInstalled, prometheusName, summaryLine,
} from '../src/observability/index.js'

const servers = inject('redis')
const host = servers.host
const port = servers.standalone.port

/** One connection to Redis that says QUIT and waits for Redis to close: what a client's quit() does. */
async function quitOnce(recycler: SocketRecycler, open = 0): Promise<void> {
  const socket = recycler.createConnection({ host, port })
  await once(socket, 'connect')
  socket.write(QUIT)
  socket.resume()
  await once(socket, 'end')
  socket.end()
  await once(socket, 'close')
  await released(recycler, open)
}

const QUIT = '*1\r\n$4\r\nQUIT\r\n'

/**
 * Waits until the recycler has only `open` sockets in use and none draining: the release protocol
 * runs a few ticks after 'close'. A bounded poll: no event tells it.
 */
async function released(recycler: SocketRecycler, open: number): Promise<void> {
  const deadline = Date.now() + 5000
  while (recycler.stats().active > open || recycler.stats().draining > 0) {
    if (Date.now() > deadline) throw new Error(`recycler still has sockets in use or draining: ${JSON.stringify(recycler.stats())}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('observability', () => {
  let recycler: SocketRecycler
  let stats: RecyclerStats
  let open: ReturnType<SocketRecycler['createConnection']>

  beforeEach(async () => {
    recycler = new SocketRecycler({ finDelayMs: 5000 })
    for (let i = 0; i < 5; i++) await quitOnce(recycler)
    // Something to count beyond the reuse: one connection left open (active).
    open = recycler.createConnection({ host, port })
    await once(open, 'connect')
    stats = recycler.stats()
    expect(stats.connections).toBe(6)
    expect(stats.active).toBe(1)
  })

  afterEach(async () => {
    // Redis closes first, as for the others: close() then has nothing to wait for.
    open.write(QUIT)
    open.resume()
    await once(open, 'end')
    open.end()
    await once(open, 'close')
    await recycler.close()
  })

  it('isInstalled() resolves from the app (the working directory), and rejects a bad name', () => {
    expect(isInstalled('prom-client')).toBe(true)
    expect(isInstalled('@opentelemetry/api')).toBe(true)
    expect(isInstalled('fdrecycle-no-such-package')).toBe(false)
    // From a directory with no node_modules above it that has the package.
    expect(isInstalled('prom-client', '/')).toBe(false)
    expect(() => isInstalled('' as string)).toThrow(InvalidArgumentError)
    expect(() => isInstalled(undefined as unknown as string)).toThrow(InvalidArgumentError)
  })

  it('OpenTelemetry: every stats() number as a metric of the global MeterProvider, values equal to stats()', async () => {
    const reader = new TestReader()
    const provider = new MeterProvider({ readers: [reader] })
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true)
    const undo = installOpenTelemetry(recycler)
    try {
      const { resourceMetrics, errors } = await reader.collect()
      expect(errors).toEqual([])
      const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === '@fdrecycle/auto')
      expect(scope?.scope.version).toBe(VERSION)
      const seen = new Map(scope!.metrics.map((m) => [m.descriptor.name, m]))
      expect([...seen.keys()].sort()).toEqual(METRICS.map((r) => r.name).sort())
      const now = recycler.stats()
      expect(now).toEqual(stats)
      for (const row of METRICS) {
        const metric = seen.get(row.name)!
        expect(metric.descriptor.unit, row.name).toBe(row.unit)
        expect(metric.dataPoints.map((p) => p.value), row.name).toEqual([now[row.stat]])
        // Counters are monotonic sums, current counts are not.
        expect((metric as { isMonotonic?: boolean }).isMonotonic, row.name).toBe(row.kind === 'counter')
      }
      expect(seen.get('fdrecycle.connections')!.dataPoints[0]!.value).toBe(6)
      expect(seen.get('fdrecycle.connections.reused')!.dataPoints[0]!.value).toBe(now.reusedConnections)
      // Plain sockets (FDRECYCLE_DISABLE=1) reuse nothing; the values still mirror stats().
      if (recyclingSupported) expect(now.reusedConnections).toBeGreaterThan(0)

      // A later collection reads stats() again.
      await quitOnce(recycler, 1)
      const again = await reader.collect()
      const connections = again.resourceMetrics.scopeMetrics
        .find((s) => s.scope.name === '@fdrecycle/auto')!.metrics.find((m) => m.descriptor.name === 'fdrecycle.connections')!
      expect(connections.dataPoints[0]!.value).toBe(7)
    } finally {
      undo()
    }
    // Undone: stats() is not read any more; the SDK's cumulative stream keeps the last value.
    await quitOnce(recycler, 1)
    expect(recycler.stats().connections).toBe(8)
    const after = await reader.collect()
    const values = after.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === 'fdrecycle.connections').flatMap((m) => m.dataPoints.map((p) => p.value))
    expect(values).toEqual([7])
    await provider.shutdown()
    metrics.disable()
  })

  it('OpenTelemetry, installed before the app sets its MeterProvider up (a preload): found on the next look, and a replaced provider too', async () => {
    const undo = installOpenTelemetry(recycler, { checkEveryMs: 20 })
    const readers: TestReader[] = []
    const providers: MeterProvider[] = []
    /** The scope's fdrecycle.connections value once the reader sees it: a bounded poll, the look runs on a timer. */
    const connectionsSeen = async (reader: TestReader): Promise<unknown> => {
      const deadline = Date.now() + 10_000
      for (;;) {
        const { resourceMetrics } = await reader.collect()
        const metric = resourceMetrics.scopeMetrics.find((s) => s.scope.name === '@fdrecycle/auto')?.metrics.find((m) => m.descriptor.name === 'fdrecycle.connections')
        if (metric) return metric.dataPoints.map((p) => p.value)
        if (Date.now() > deadline) throw new Error('no fdrecycle.connections within 10 s')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    try {
      for (const expected of [6, 7]) {
        const reader = new TestReader()
        const provider = new MeterProvider({ readers: [reader] })
        readers.push(reader)
        providers.push(provider)
        metrics.disable()
        expect(metrics.setGlobalMeterProvider(provider)).toBe(true)
        expect(await connectionsSeen(reader)).toEqual([expected])
        expect(recycler.stats().connections).toBe(expected)
        await quitOnce(recycler, 1)
      }
      // The first provider is not read any more: its last value stays.
      expect(await connectionsSeen(readers[0]!)).toEqual([6])
    } finally {
      undo()
      metrics.disable()
      for (const p of providers) await p.shutdown()
    }
    expect(() => installOpenTelemetry(recycler, { checkEveryMs: 0 })).toThrow(InvalidOptionError)
  })

  it("prom-client: every stats() number on the default registry, values equal to stats()", async () => {
    const undo = installPromClient(recycler)
    try {
      const text = await client.register.metrics()
      const now = recycler.stats()
      expect(now).toEqual(stats)
      for (const row of METRICS) {
        const name = prometheusName(row)
        expect(text).toMatch(new RegExp(`^# TYPE ${name} ${row.kind}$`, 'm'))
        expect(text, name).toMatch(new RegExp(`^${name} ${now[row.stat]}$`, 'm'))
      }
      expect(text).toMatch(/^fdrecycle_connections_total 6$/m)
      // A second install leaves the registered names to the first (prom-client would throw).
      const second = installPromClient(recycler)
      second()
      expect(await client.register.metrics()).toMatch(/^fdrecycle_connections_total 6$/m)
    } finally {
      undo()
    }
    expect(await client.register.metrics()).not.toMatch(/fdrecycle_/)
  })

  it('installReport: one summary line of stats(); an unknown target is a typed error', () => {
    expect(summaryLine(stats)).toBe(`fdrecycle: ${Object.entries(stats).map(([k, v]) => `${k}=${v}`).join(' ')}\n`)
    expect(() => installReport(recycler, 'stdout' as 'stderr')).toThrow(InvalidArgumentError)
  })
})

describe('FDRECYCLE_REPORT=stderr, in a spawned process', () => {
  const core = ensureBuilt('core')
  ensureBuilt('auto')
  const report = join(repoRoot, 'packages', 'auto', 'dist', 'esm', 'observability', 'report.js')

  /** A child that makes `n` recycled connections to Redis (QUIT, Redis closes), then runs `tail`. */
  const child = (n: number, tail: string) =>
    spawn(process.execPath, ['--input-type=module', '-e', `
      import { once } from 'node:events'
      import { SocketRecycler } from ${JSON.stringify(pathToFileURL(core).href)}
      import { installReport } from ${JSON.stringify(pathToFileURL(report).href)}
      const recycler = new SocketRecycler({ finDelayMs: 5000 })
      installReport(recycler, 'stderr')
      for (let i = 0; i < ${n}; i++) {
        const socket = recycler.createConnection({ host: ${JSON.stringify(host)}, port: ${port} })
        await once(socket, 'connect')
        socket.write('*1\\r\\n$4\\r\\nQUIT\\r\\n')
        socket.resume()
        await once(socket, 'end')
        socket.end()
        await once(socket, 'close')
      }
      ${tail}
    `], { stdio: ['ignore', 'pipe', 'pipe'] })

  const collect = async (p: ReturnType<typeof child>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> => {
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d))
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    const [code, signal] = (await once(p, 'exit')) as [number | null, NodeJS.Signals | null]
    return { code, signal, stdout, stderr }
  }
  const lines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('fdrecycle: '))

  it('writes one line at exit and does not keep the process alive', async () => {
    // The recycler is left open: its idle fds and timers must not hold the process either.
    const r = await collect(child(3, ''))
    expect(r.code).toBe(0)
    const [line, ...more] = lines(r.stderr)
    expect(more).toEqual([])
    expect(line).toMatch(/^fdrecycle: mode=(recycling|passthrough) .*\bconnections=3\b/)
  })

  it('SIGUSR2 without a listener of the app: the line, then the process ends by SIGUSR2 as it would have', async () => {
    const p = child(2, "process.stdout.write('ready\\n'); setInterval(() => {}, 1000)")
    const result = collect(p)
    await once(p.stdout, 'data')
    p.kill('SIGUSR2')
    const r = await result
    expect(r.signal).toBe('SIGUSR2')
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/\bconnections=2\b/)])
  })

  it('SIGUSR2 with two reports and no listener of the app: both lines, then the process ends by SIGUSR2', async () => {
    const p = child(1, `
      installReport(new SocketRecycler(), 'stderr')
      process.stdout.write('ready\\n')
      setInterval(() => {}, 1000)
    `)
    const result = collect(p)
    await once(p.stdout, 'data')
    p.kill('SIGUSR2')
    const r = await result
    expect(r.signal).toBe('SIGUSR2')
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/\bconnections=1\b/), expect.stringMatching(/\bconnections=0\b/)])
  })

  it("SIGUSR2 with a listener of the app: the line, and the app's listener decides", async () => {
    const p = child(1, `
      let n = 0
      const timer = setInterval(() => {}, 1000)
      process.on('SIGUSR2', () => { n++; process.stdout.write('app ' + n + '\\n'); if (n === 2) clearInterval(timer) })
      process.stdout.write('ready\\n')
    `)
    const result = collect(p)
    let out = ''
    const next = async (want: string): Promise<void> => {
      while (!out.includes(want)) out += String((await once(p.stdout, 'data'))[0])
    }
    await next('ready')
    p.kill('SIGUSR2')
    await next('app 1')
    p.kill('SIGUSR2')
    const r = await result
    expect(r.code).toBe(0)
    expect(out + r.stdout).toContain('app 2')
    // Two signals and the exit: three lines.
    expect(lines(r.stderr)).toHaveLength(3)
  })

  it('VERSION is the package version', () => {
    expect(VERSION).toBe((JSON.parse(readFileSync(join(repoRoot, 'packages', 'auto', 'package.json'), 'utf8')) as { version: string }).version)
  })
})
