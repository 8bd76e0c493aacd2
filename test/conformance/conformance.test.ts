// The conformance runner's own parts, without Node's tests: where it finds the Debian mirror,
// and that its preload routes net through the recycler and leaves the rest of net alone.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { ensureBuilt, repoRoot } from '../helpers/built.js'
import { recyclingSupported } from '../helpers/run-mode.js'
// @ts-expect-error plain ESM module without types
import { machineDebianMirror } from './fetch-node-tests.mjs'

describe('machineDebianMirror', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })
  const write = (name: string, text: string) => {
    dir ??= mkdtempSync(join(tmpdir(), 'fdrecycle-apt-'))
    const file = join(dir, name)
    writeFileSync(file, text)
    return file
  }

  it('reads a deb822 .sources stanza, skipping security and third-party suites', () => {
    const security = write('a.sources', 'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n')
    const other = write('b.sources', 'Types: deb\nURIs: https://vendor.example/node\nSuites: nodistro\nComponents: main\n')
    const debian = write(
      'c.sources',
      'Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    )
    expect(machineDebianMirror([security, other, debian])).toEqual({
      uri: 'http://mirror.example/debian',
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    })
  })

  it('reads a one-line deb entry, skipping deb-src, comments and disabled stanzas', () => {
    const disabled = write('d.sources', 'Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\nSuites: trixie\nComponents: main\n')
    const list = write(
      'e.list',
      '# deb http://commented.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n',
    )
    expect(machineDebianMirror([disabled, list])).toEqual({ uri: 'http://one.example/debian', signedBy: '/k.gpg' })
    expect(machineDebianMirror([disabled])).toBeUndefined()
  })
})

describe.runIf(recyclingSupported)('preload.mjs', () => {
  it('routes net.connect, net.createConnection and new net.Socket() through one recycler; subclasses and TLS keep net.Socket', () => {
    ensureBuilt('core')
    const preload = pathToFileURL(join(repoRoot, 'test', 'conformance', 'preload.mjs')).href
    const script = `
      const net = require('node:net'), tls = require('node:tls')
      const kinds = [net.connect, net.createConnection, (o) => new net.Socket().connect(o), (o) => net.Socket().connect(o)]
      class Mine extends net.Socket {}
      const mine = new Mine()
      const wrapped = new tls.TLSSocket()
      const server = net.createServer((c) => c.end()).listen(0, '127.0.0.1', async () => {
        const out = { globals: Object.keys(globalThis), execArgv: process.execArgv, mine: [mine.constructor.name, mine instanceof net.Socket], tls: wrapped instanceof net.Socket, sockets: [] }
        for (const make of kinds) {
          const socket = make({ host: '127.0.0.1', port: server.address().port })
          out.sockets.push([socket.constructor.name, socket instanceof net.Socket, socket instanceof net.Stream])
          await new Promise((resolve) => socket.on('close', resolve).resume())
        }
        wrapped.destroy()
        server.close()
        console.log(JSON.stringify(out))
      })`
    const out = JSON.parse(execFileSync(process.execPath, ['--import', preload, '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 }))
    expect(out.sockets).toEqual(Array(4).fill(['RecycledSocket', true, true]))
    expect(out.mine).toEqual(['Mine', true])
    expect(out.tls).toBe(true)
    // Node 20's test/common fails a test that leaves a global behind: the preload adds none.
    const plainGlobals = JSON.parse(execFileSync(process.execPath, ['-p', 'JSON.stringify(Object.keys(globalThis))'], { encoding: 'utf8' }))
    expect(out.globals).toEqual(plainGlobals)
    // Children of the test process run plain.
    expect(out.execArgv).not.toContain(preload)
  })
})
