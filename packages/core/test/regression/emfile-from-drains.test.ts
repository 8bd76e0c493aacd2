import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ensureBuilt } from '../../../../test/helpers/built.js'
import { neverClose, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'

// What broke: under `ulimit -n 1024`, connect / write / destroy() against a server that never
// closes: plain net connected 3,000 of 3,000; recycled, every destroyed socket kept its fd
// draining for finDelayMs + drainTimeoutMs with no cap: 1,004 connected, then EMFILE, and close()
// took 5.9 s. Drains are now capped (maxDraining, a quarter of RLIMIT_NOFILE by default), the
// oldest closed as a plain destroy() would, and close() does not wait for drains whose FIN is out.
const N = 3000
const NOFILE = 1024
/** What close() may wait for: drains whose FIN is still withheld, at most finDelayMs (1 s); 2x. */
const CLOSE_BOUND_MS = 2000

interface ChildReport {
  connected: number
  errors: Record<string, number>
  maxFds: number
  closeMs?: number
  stats?: Record<string, number>
}

/** Runs the loop in a child whose RLIMIT_NOFILE soft limit is NOFILE (a shell's `ulimit -n`). */
function runLoop(entry: string, port: number, mode: 'plain' | 'recycled'): Promise<ChildReport> {
  const source = `
    import net from 'node:net'
    import { readdirSync } from 'node:fs'
    import { SocketRecycler } from ${JSON.stringify(entry)}
    const recycler = ${JSON.stringify(mode)} === 'recycled' ? new SocketRecycler() : null
    const connect = () => recycler ? recycler.createConnection(${port}, '127.0.0.1') : net.createConnection(${port}, '127.0.0.1')
    const report = { connected: 0, errors: {}, maxFds: 0 }
    for (let i = 0; i < ${N}; i++) {
      const s = connect()
      const err = await new Promise((resolve) => { s.once('connect', () => resolve(null)); s.once('error', resolve) })
      if (err) report.errors[err.code] = (report.errors[err.code] ?? 0) + 1
      else {
        report.connected++
        s.write('x')
      }
      s.destroy()
      if (i % 50 === 0) report.maxFds = Math.max(report.maxFds, readdirSync('/proc/self/fd').length)
    }
    if (recycler) {
      const t0 = performance.now()
      await recycler.close()
      report.closeMs = performance.now() - t0
      report.stats = recycler.stats()
    }
    console.log(JSON.stringify(report))
  `
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `ulimit -n ${NOFILE} && exec "$0" --input-type=module -e "$1"`, process.execPath, source])
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${err}`))
      resolve(JSON.parse(out.trim()) as ChildReport)
    })
  })
}

describe.runIf(isLinux)('regression: drains are bounded under a low RLIMIT_NOFILE', () => {
  it(`connect / write / destroy() ${N} times at ulimit -n ${NOFILE}: all connect, no EMFILE, close() returns promptly`, async () => {
    const entry = ensureBuilt('core')
    await using srv = await tcpServer(neverClose)
    const plain = await runLoop(entry, srv.port, 'plain')
    const recycled = await runLoop(entry, srv.port, 'recycled')
    console.log(
      `plain: ${plain.connected}/${N} connected, max ${plain.maxFds} fds; recycled: ${recycled.connected}/${N}, ` +
        `max ${recycled.maxFds} fds, ${recycled.stats?.drainsShed} drains shed, close() ${recycled.closeMs?.toFixed(0)} ms`,
    )
    expect(plain).toMatchObject({ connected: N, errors: {} })
    expect(recycled).toMatchObject({ connected: N, errors: {} })
    // a quarter of the limit drains; the rest is left to the user
    expect(recycled.maxFds).toBeLessThan(NOFILE / 2)
    expect(recycled.stats!.drainsShed).toBeGreaterThan(0)
    expect(recycled.stats!.fdsClosed).toBe(recycled.stats!.fdsCreated)
    expect(recycled.closeMs).toBeLessThan(CLOSE_BOUND_MS)
  }, 240_000) // two children of 3,000 connections each: 5 to 10 s apiece here, more on a loaded host
})
