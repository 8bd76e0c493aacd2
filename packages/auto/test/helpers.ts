import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { expect, inject } from 'vitest'
import { hasSs, timeWaitCount } from '../../../test/helpers/system.js'
import { ensureBuilt } from '../../../test/helpers/built.js'

export const fixtures = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures')

/** The packages a child's `@fdrecycle/auto` loads, built (children import dist, as users do). */
export function buildAuto(): void {
  for (const pkg of ['core', 'pg-adapter', 'redis-adapter', 'http-adapter', 'auto']) ensureBuilt(pkg)
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs `node ...args` in the fixtures directory (so `@fdrecycle/auto`, pg, ioredis resolve from
 * the workspace) with FDRECYCLE_* and NODE_OPTIONS cleared unless given. A child still running
 * after `killAfterMs` is killed: the result then has signal SIGKILL (it did not exit by itself).
 */
export function runNode(args: string[], env: Record<string, string | undefined> = {}, killAfterMs = 60_000): Promise<ChildResult> {
  const base: Record<string, string | undefined> = { ...process.env }
  for (const key of Object.keys(base)) if (key.startsWith('FDRECYCLE_') || key === 'NODE_OPTIONS') delete base[key]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: fixtures, env: { ...base, ...env } as NodeJS.ProcessEnv })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** The servers of the auto project's global set-ups, as app-body.mjs reads them (AUTO_TARGETS). */
export function targets(): Record<string, unknown> {
  const pg = inject('pg')
  const redis = inject('redis')
  const nginx = inject('nginx')
  return {
    pg: { host: '127.0.0.1', port: pg.plain.port, user: pg.user, database: pg.database },
    redis: { host: redis.host, port: redis.standalone.port },
    // one response per connection (nginx closes it): every request is a new connection
    http: `http://${nginx.host}:${nginx.ports.direct}${nginx.small.path}`,
    fetch: `http://${nginx.host}:${nginx.ports.undici}${nginx.small.path}`,
  }
}

export type Stats = Record<string, number> & { mode: string }

export interface ClientReport {
  results: unknown[]
  before: Stats | null
  after: Stats | null
  localPorts?: number[]
}

export function parseReport(stdout: string): { clients: Record<string, ClientReport> } {
  const line = stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(line) as { clients: Record<string, ClientReport> }
}

/** after - before of one counter of a client's phase. */
export function delta(report: ClientReport, key: string): number {
  return (report.after?.[key] ?? 0) - (report.before?.[key] ?? 0)
}

/**
 * The checks of a preloaded run of app.mjs / app.cjs against its plain run: same responses; every
 * round of each client a new connection on a recycled socket, some of them on a reused fd; no
 * client TIME_WAIT on pg's port from any of its connections; the process exited by itself.
 */
export function checkRecycled(what: string, r: ChildResult, plain: Record<string, ClientReport>, names: readonly string[], rounds: number, pgPort: number): void {
  expect(r.stderr, what).toBe('')
  expect(r.signal, what).toBeNull()
  expect(r.code, what).toBe(0)
  const { clients } = parseReport(r.stdout)
  for (const name of names) {
    const c = clients[name]!
    expect(c.results, `${what} ${name}`).toEqual(plain[name]!.results)
    expect(c.after?.mode, `${what} ${name}`).toBe('recycling')
    // every round is a new connection (maxUses 1, QUIT, `Connection: close`): all on recycled sockets
    expect(delta(c, 'connections'), `${what} ${name}`).toBe(rounds)
    expect(delta(c, 'reusedConnections'), `${what} ${name}`).toBeGreaterThan(0)
    expect(delta(c, 'fdsCreated'), `${what} ${name}`).toBeLessThan(rounds)
  }
  console.log(`${what}: ${names.map((n) => `${n} ${delta(clients[n]!, 'connections')} connections, ${delta(clients[n]!, 'reusedConnections')} reused, ${delta(clients[n]!, 'fdsCreated')} fds created`).join('; ')}`)
  if (!names.includes('pg')) return
  // pg's Terminate: the server closes first, no TIME_WAIT on this side of any of its connections
  expect(clients.pg!.localPorts, what).toHaveLength(rounds)
  if (hasSs()) expect(timeWaitCount(pgPort, 'client', clients.pg!.localPorts), what).toBe(0)
}
