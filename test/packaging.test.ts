import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..')
const packages = ['core', 'pg-adapter', 'redis-adapter', 'http-adapter', 'mysql-adapter', 'postgresjs-adapter']

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
