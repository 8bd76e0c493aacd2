import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ensureBuilt } from './helpers/built.js'
import { neverClose, tcpServer } from './helpers/servers.js'
import { isLinux } from './helpers/system.js'

function runChild(source: string, env: Record<string, string>): Promise<{ code: number | null; ms: number; out: string }> {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { env: { ...process.env, ...env } })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (code) => resolve({ code, ms: Date.now() - started, out }))
  })
}

describe.runIf(isLinux)('process lifecycle', () => {
  it('a recycler never keeps the process alive: idle fds, drains and their timers are unref()ed', async () => {
    const entry = ensureBuilt('core')
    await using srv = await tcpServer(neverClose)
    // finDelayMs and drainTimeoutMs far beyond the bound: only unref() lets the child exit in time.
    const source = `
      import { SocketRecycler } from ${JSON.stringify(entry)}
      const recycler = new SocketRecycler({ finDelayMs: 60000, drainTimeoutMs: 60000, minIdle: 2 })
      const a = recycler.createConnection({ host: '127.0.0.1', port: Number(process.env.PORT) })
      a.on('connect', () => { a.destroy(); setImmediate(() => console.log(JSON.stringify(recycler.stats()))) })
    `
    const r = await runChild(source, { PORT: String(srv.port) })
    expect(r.code).toBe(0)
    expect(r.ms).toBeLessThan(10_000)
    // 2 + 2 prewarmed, one of them in the drain now
    expect(JSON.parse(r.out.trim())).toMatchObject({ draining: 1, idle: 3, fdsCreated: 4 })
  })

  it('after close() no handle or timer of the recycler is left', async () => {
    const entry = ensureBuilt('core')
    await using srv = await tcpServer(neverClose)
    const source = `
      import { SocketRecycler } from ${JSON.stringify(entry)}
      const before = process.getActiveResourcesInfo()
      const recycler = new SocketRecycler({ finDelayMs: 60000, drainTimeoutMs: 60000, closeTimeoutMs: 50, idleTimeoutMs: 1000 })
      const a = recycler.createConnection({ host: '127.0.0.1', port: Number(process.env.PORT) })
      await new Promise((r) => a.on('connect', r))
      a.destroy()
      await new Promise((r) => setImmediate(r))
      await recycler.close()
      await new Promise((r) => setImmediate(r))
      const after = process.getActiveResourcesInfo()
      console.log(JSON.stringify({ before, after, stats: recycler.stats() }))
    `
    const r = await runChild(source, { PORT: String(srv.port) })
    expect(r.code).toBe(0)
    const { before, after, stats } = JSON.parse(r.out.trim()) as { before: string[]; after: string[]; stats: Record<string, number> }
    const ours = (list: string[]) => list.filter((x) => x === 'TCPWrap' || x === 'TCPSocketWrap' || x === 'Timeout' || x === 'Immediate').sort()
    expect(ours(after)).toEqual(ours(before))
    expect(stats.fdsClosed).toBe(stats.fdsCreated)
  })
})
