// The preload never keeps a process alive, patches a client loaded before it where it can, says
// once (a warning) where it cannot, and installs nothing where the recycler would not recycle.
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { isLinux } from '../../../test/helpers/system.js'
import { buildAuto, fixtures, runNode } from './helpers.js'

const lastLine = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!)

describe.runIf(isLinux && isRecyclingSupported())('process lifecycle with the preload', () => {
  beforeAll(() => buildAuto(), 240_000)

  it('keep-alive sockets left open by the app (global agent, fetch) do not keep the process alive', async () => {
    const nginx = inject('nginx')
    const url = `http://${nginx.host}:${nginx.ports.keepalive}${nginx.small.path}`
    const env = { AUTO_KEEPALIVE: JSON.stringify({ http: url, fetch: url }) }
    const plain = await runNode(['keepalive.mjs'], env, 30_000)
    expect(plain.signal).toBeNull()
    expect(plain.code).toBe(0)
    for (const flag of ['--import', '-r']) {
      // killed after 30 s: a process kept alive fails here with signal SIGKILL
      const r = await runNode([flag, '@fdrecycle/auto', 'keepalive.mjs'], env, 30_000)
      expect(r.stderr).toBe('')
      expect(r.signal).toBeNull()
      expect(r.code).toBe(0)
      const { stats } = lastLine(r.stdout)
      // both keep-alive connections still open at the end: the process exits with them
      expect(stats).toMatchObject({ mode: 'recycling', connections: 2, active: 2 })
    }
  }, 120_000)

  it("Node's own default dispatcher (set when pg's stream.js loads Node's undici) is replaced; one the app set first is left alone", async () => {
    const nginx = inject('nginx')
    const env = { AUTO_URL: `http://${nginx.host}:${nginx.ports.undici}${nginx.small.path}` }
    // pg's require makes `new Response()`: Node's bundled undici sets its default dispatcher then
    const r = await runNode(['-r', 'pg', '-r', '@fdrecycle/auto', 'dispatcher.cjs'], env)
    expect(r.stderr).toMatch(/^(\(node:\d+\) \[FDRECYCLE_AUTO_SKIPPED\] Warning: @fdrecycle\/auto \(pg\): .+\n\(Use .+\n)?$/)
    expect(lastLine(r.stdout)).toEqual({ status: 200, appsOwn: false, connections: 1 })
    const own = await runNode(['-r', './set-dispatcher.cjs', '-r', '@fdrecycle/auto', 'dispatcher.cjs'], env)
    expect(own.code).toBe(0)
    expect(lastLine(own.stdout)).toEqual({ status: 200, appsOwn: true, connections: 0 })
    expect(own.stderr).toMatch(/\(fetch\): a global dispatcher \(an? Agent\) was set before @fdrecycle\/auto ran; it is left alone/)
  }, 60_000)

  it("at the app's end, a socket whose FIN waits for the peer's gets that goodbye before the exit (bounded by finDelayMs)", async () => {
    // HTTP/1.1 by hand: the response, then the server's FIN 1.5 s later
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
        setTimeout(() => socket.end(), 1500)
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const env = { AUTO_URL: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, FDRECYCLE_OPTIONS: '{"finDelayMs":10000}' }
      const r = await runNode(['--import', '@fdrecycle/auto', 'late-close.mjs'], env, 30_000)
      expect(r.stderr).toBe('')
      expect(r.signal).toBeNull()
      expect(r.code).toBe(0)
      // the server closed first; without the wait the exit would have closed the fd mid-drain
      expect(lastLine(r.stdout).atExit).toMatchObject({ connections: 1, peerClosedFirst: 1, finSentFirst: 0, draining: 0 })
    } finally {
      server.close()
    }
  }, 60_000)

  it('clients loaded before it by another preload: ioredis patched in place, pg left plain with one warning', async () => {
    const r = await runNode(['-r', './load-clients.cjs', '-r', '@fdrecycle/auto', 'probe.cjs'])
    expect(r.code).toBe(0)
    expect(lastLine(r.stdout)).toMatchObject({ installed: ['pg', 'ioredis', 'redis', 'http', 'fetch'], pgStream: 'Socket', ioredisConnector: 'Connector' })
    const warnings = r.stderr.split('\n').filter((l) => l.includes('FDRECYCLE_AUTO_SKIPPED'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/\(pg\): pg in .+ was loaded before @fdrecycle\/auto; its connections stay plain/)
  }, 60_000)

  it('one require hook for every integration: uninstall() gives Node its own require back', async () => {
    const source = [
      "const Module = require('node:module')",
      'const original = Module.prototype.require',
      "require('@fdrecycle/auto')",
      'const patched = Module.prototype.require !== original',
      "globalThis[Symbol.for('fdrecycle.auto.installed')].uninstall()",
      'console.log(JSON.stringify({ patched, restored: Module.prototype.require === original }))',
    ].join('\n')
    const r = await runNode(['-e', source])
    expect(r.stderr).toBe('')
    expect(lastLine(r.stdout)).toEqual({ patched: true, restored: true })
  }, 60_000)

  it("mode 'passthrough' in FDRECYCLE_OPTIONS: nothing installed", async () => {
    const r = await runNode(['--import', '@fdrecycle/auto', 'probe.cjs'], { FDRECYCLE_OPTIONS: '{"mode":"passthrough"}' })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lastLine(r.stdout)).toMatchObject({ installed: [], pgStream: 'Socket', ioredisConnector: 'StandaloneConnector', httpAgent: 'Agent' })
  }, 60_000)

  it('client versions outside the tested ranges (pg 7, undici 8): one warning each, those left plain, the others patched', async () => {
    // a pg 7 where the app resolves pg: its own node_modules, outside the workspace
    const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-auto-versions-'))
    try {
      const pg = join(dir, 'node_modules', 'pg')
      mkdirSync(join(pg, 'lib'), { recursive: true })
      writeFileSync(join(pg, 'package.json'), JSON.stringify({ name: 'pg', version: '7.18.2', main: 'lib/index.js' }))
      writeFileSync(join(pg, 'lib', 'connection.js'), 'module.exports = class Connection { constructor(c = {}) { this.stream = c.stream || "plain" } }\n')
      writeFileSync(join(pg, 'lib', 'index.js'), 'const Connection = require("./connection")\nmodule.exports = { Connection }\n')
      // and an undici 8, which reads the global dispatcher too: fetch() and it are left plain
      const undici = join(dir, 'node_modules', 'undici')
      mkdirSync(join(undici, 'lib'), { recursive: true })
      writeFileSync(join(undici, 'package.json'), JSON.stringify({ name: 'undici', version: '8.0.0', main: 'index.js' }))
      writeFileSync(join(undici, 'index.js'), 'module.exports = require("./lib/global")\n')
      writeFileSync(join(undici, 'lib', 'global.js'), 'module.exports = { version: 8 }\n')
      writeFileSync(join(dir, 'app.cjs'), [
        'const { Connection } = require("pg")',
        'const http = require("node:http")',
        'const dispatcher = globalThis[Symbol.for("undici.globalDispatcher.1")] ?? globalThis[Symbol.for("undici.globalDispatcher.2")] ?? null',
        'console.log(JSON.stringify({ stream: new Connection().stream, agent: http.globalAgent.constructor.name, undici: require("undici").version, dispatcher }))',
        'require("pg/lib/connection")', // a second load of the same file: still one warning
      ].join('\n'))
      const r = await runNode(['-r', join(fixtures, '..', '..', 'dist', 'cjs', 'index.js'), join(dir, 'app.cjs')])
      expect(r.code).toBe(0)
      expect(lastLine(r.stdout)).toEqual({ stream: 'plain', agent: 'RecycledAgent', undici: 8, dispatcher: null })
      const warnings = r.stderr.split('\n').filter((l) => l.includes('FDRECYCLE_AUTO_SKIPPED'))
      expect(warnings).toHaveLength(2)
      expect(warnings[0]).toMatch(/\(fetch\): the app's undici 8\.0\.0 in .+ is outside the tested range >=6\.0\.0 <8; global fetch\(\) and undici are left plain/)
      expect(warnings[1]).toMatch(/\(pg\): pg 7\.18\.2 in .+ is outside the tested range >=8\.9\.0 <9; its connections stay plain/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
