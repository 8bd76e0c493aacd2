import { execFile, execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt } from './helpers/built.js'

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..')
const packages = ['core', 'pg-adapter', 'redis-adapter', 'http-adapter', 'mysql-adapter', 'postgresjs-adapter', 'auto']
const fixtures = join(root, 'test', 'fixtures', 'packaging')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

function built(pkg: string): boolean {
  return existsSync(join(root, 'packages', pkg, 'dist', 'cjs', 'index.js')) && existsSync(join(root, 'packages', pkg, 'dist', 'esm', 'index.js'))
}

describe('packages resolve from ESM and CommonJS, with types', () => {
  for (const pkg of packages) {
    it(`@fdrecycle/${pkg}`, () => {
      if (!built(pkg)) execFileSync(process.execPath, [join(root, 'scripts', 'build-package.mjs')], { cwd: join(root, 'packages', pkg), stdio: 'ignore' })
      const name = `@fdrecycle/${pkg}`
      const cjs = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(name)})).sort()))`], { cwd: root, encoding: 'utf8' })
      const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `import * as m from ${JSON.stringify(name)}; console.log(JSON.stringify(Object.keys(m).sort()))`], { cwd: root, encoding: 'utf8' })
      expect(JSON.parse(cjs)).toEqual(JSON.parse(esm))
      const manifest = JSON.parse(readFileSync(join(root, 'packages', pkg, 'package.json'), 'utf8'))
      for (const condition of ['import', 'require'] as const) {
        const entry = manifest.exports['.'][condition]
        expect(Object.keys(entry)[0]).toBe('types')
        expect(existsSync(join(root, 'packages', pkg, entry.types))).toBe(true)
      }
      if (pkg === 'core') {
        expect(JSON.parse(cjs)).toEqual(expect.arrayContaining(['SocketRecycler', 'defaultRecycler', 'isRecyclingSupported', 'RecycledSocket']))
        // koffi loads lazily: requiring the package opens no library and probes nothing
        const lazy = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(name)}); console.log(Object.keys(require.cache).some((k) => k.includes('/koffi/')))`], { cwd: root, encoding: 'utf8' })
        expect(lazy.trim()).toBe('false')
      }
    })
  }
})

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

// npm run sets npm_* variables (the workspace's prefix among them) that must not steer the app's
// own installs; the user's cache, registry and config files still apply. FDRECYCLE_DISABLE (the
// fallback pass of `npm test`) would hide whether the packages recycle.
const keptNpmConfig = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig'])
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => (!/^npm_/i.test(k) || keptNpmConfig.has(k.toLowerCase())) && k !== 'FDRECYCLE_DISABLE' && k !== 'INIT_CWD'),
)

/** A child process that resolves with its exit code and output (never rejects), so tests can start together. */
function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: cleanEnv, encoding: 'utf8', maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr: stderr || (error && typeof error.code !== 'number' ? String(error) : '') })
    })
  })
}

function ok(r: Run, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The version the workspace itself installed, so that the throwaway app's install is served from npm's cache. */
function workspaceVersion(name: string): string {
  return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
}

const tsArgs = ['--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--noEmit', '--types', 'node']
const installArgs = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error']

// What a user gets from the registry: every package packed (prepack builds or refuses a missing
// dist), the tarballs installed into apps outside the workspace, then used from ESM, CommonJS
// and TypeScript. A second app installs core with --omit=optional: no koffi at all.
describe('packed tarballs installed into a throwaway app outside the workspace', () => {
  let dir = ''
  let tarballs: Record<string, { filename: string; files: string[] }> = {}
  let esm: Promise<Run>
  let cjs: Promise<Run>
  let types: Promise<Run>
  let noKoffi: Promise<Run>
  let noKoffiTypes: Promise<Run>
  let autoRuns: [string, Promise<Run>][]

  beforeAll(async () => {
    // Built first under the shared build lock, so prepack finds dist fresh and does not rebuild
    // it under another test file's feet.
    for (const pkg of packages) ensureBuilt(pkg)
    dir = mkdtempSync(join(tmpdir(), 'fdrecycle-packaging-'))
    const pack = ok(await run('npm', ['pack', ...packages.flatMap((p) => ['--workspace', `packages/${p}`]), '--pack-destination', dir, '--json', '--loglevel=error'], root), 'npm pack')
    for (const entry of JSON.parse(pack.slice(pack.indexOf('['))) as { name: string; filename: string; files: { path: string }[] }[]) {
      tarballs[entry.name] = { filename: entry.filename, files: entry.files.map((f) => f.path) }
    }
    const tarball = (pkg: string) => `file:${join(dir, tarballs[`@fdrecycle/${pkg}`]!.filename)}`

    const app = join(dir, 'app')
    mkdirSync(app)
    const dependencies: Record<string, string> = Object.fromEntries(packages.map((p) => [`@fdrecycle/${p}`, tarball(p)]))
    for (const name of ['pg', 'ioredis', 'undici', 'mysql2', 'postgres', '@types/node', '@types/pg']) dependencies[name] = workspaceVersion(name)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packaging-app', private: true, dependencies }, null, 2))
    for (const file of ['check.mjs', 'esm.mjs', 'cjs.cjs', 'api.ts', 'auto-app.mjs', 'auto-app.cjs']) copyFileSync(join(fixtures, file), join(app, file))

    const bare = join(dir, 'no-koffi')
    mkdirSync(bare)
    writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'no-koffi-app', private: true, type: 'module', dependencies: { '@fdrecycle/core': tarball('core'), '@types/node': workspaceVersion('@types/node') } }, null, 2))
    for (const file of ['no-koffi.mjs', 'core-api.ts']) copyFileSync(join(fixtures, file), join(bare, file))

    const [appInstall, bareInstall] = await Promise.all([run('npm', installArgs, app), run('npm', [...installArgs, '--omit=optional'], bare)])
    ok(appInstall, 'npm install (app)')
    ok(bareInstall, 'npm install --omit=optional (no-koffi app)')

    esm = run(process.execPath, ['esm.mjs'], app)
    cjs = run(process.execPath, ['cjs.cjs'], app)
    // skipLibCheck as `tsc --init` sets it: the third-party clients' declarations are theirs.
    types = run(process.execPath, [tsc, ...tsArgs, '--skipLibCheck', 'api.ts'], app)
    noKoffi = run(process.execPath, ['no-koffi.mjs'], bare)
    noKoffiTypes = run(process.execPath, [tsc, ...tsArgs, 'core-api.ts'], bare)
    autoRuns = [['--import', 'auto-app.mjs'], ['-r', 'auto-app.mjs'], ['--import', 'auto-app.cjs'], ['-r', 'auto-app.cjs']].map(
      ([flag, file]) => [`${flag} @fdrecycle/auto ${file}`, run(process.execPath, [flag!, '@fdrecycle/auto', file!], app)],
    )
  }, 300_000)

  afterAll(async () => {
    await Promise.all([esm, cjs, types, noKoffi, noKoffiTypes, ...(autoRuns ?? []).map(([, r]) => r)].filter(Boolean))
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('every tarball carries LICENSE, README, both builds with declarations, and no tests', () => {
    expect(Object.keys(tarballs).sort()).toEqual(packages.map((p) => `@fdrecycle/${p}`).sort())
    for (const [name, { files }] of Object.entries(tarballs)) {
      for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json']) {
        expect(files, `${name} ${file}`).toContain(file)
      }
      expect(files.filter((f) => f.includes('test')), name).toEqual([])
      const readme = readFileSync(join(root, 'packages', name.replace('@fdrecycle/', ''), 'README.md'), 'utf8')
      expect(readme.match(/\]\((?!https:\/\/|#)[^)]*\)/g) ?? [], `${name}: README links must be absolute`).toEqual([])
    }
  })

  for (const [format, result] of [['ESM', () => esm], ['CommonJS', () => cjs]] as const) {
    it(`${format}: recycles through core and each adapter (net, node:http, undici), constructs pg and ioredis clients`, async () => {
      const summary = JSON.parse(ok(await result(), format).trim().split('\n').at(-1)!)
      expect(summary).toMatchObject({
        supported: true,
        echoed: 'ping',
        viaAgent: 'hello /agent',
        viaUndici: 'hello /undici',
        pgClient: 'function',
        sameRecycler: true,
        errorCode: 'ERR_FDRECYCLE_INVALID_OPTION',
      })
      expect(summary.stats.mode).toBe('recycling')
      expect(summary.stats.connections).toBe(3)
      expect(summary.stats.reusedConnections).toBeGreaterThanOrEqual(1)
    })
  }

  it('@fdrecycle/auto as a preload (--import and -r, ESM and CommonJS apps): the global agent, fetch, pg and ioredis recycled', async () => {
    for (const [what, result] of autoRuns) {
      const r = await result
      const summary = JSON.parse(ok(r, what).trim().split('\n').at(-1)!)
      expect(r.stderr, what).toBe('')
      expect(summary.bodies, what).toEqual(['hello /get0', 'hello /fetch0', 'hello /get1', 'hello /fetch1', 'hello /get2', 'hello /fetch2'])
      expect(summary, what).toMatchObject({ pgStream: 'RecycledSocket', ioredisConnector: 'Connector' })
      expect(summary.stats.mode, what).toBe('recycling')
      expect(summary.stats.connections, what).toBe(6)
      expect(summary.stats.reusedConnections, what).toBeGreaterThanOrEqual(1)
    }
  })

  it('tsc --strict type-checks the public API of the packages', async () => {
    ok(await types, 'tsc --strict api.ts')
  })

  it('without koffi (--omit=optional): recycling reports unsupported, the same API hands out working plain sockets', async () => {
    expect(existsSync(join(dir, 'no-koffi', 'node_modules', 'koffi'))).toBe(false)
    const summary = JSON.parse(ok(await noKoffi, 'no-koffi.mjs').trim().split('\n').at(-1)!)
    expect(summary).toMatchObject({ supported: false, echoed: 'ping', mode: 'passthrough', defaultMode: 'passthrough', connections: 1, recycleMode: 'ERR_FDRECYCLE_UNSUPPORTED' })
    expect(summary.reason).toMatch(/koffi/)
  })

  it("core's declarations type-check under --strict without skipLibCheck and without koffi installed", async () => {
    ok(await noKoffiTypes, 'tsc --strict core-api.ts')
  })
})
