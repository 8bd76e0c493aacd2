import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const repoRoot = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')

function newest(dir: string): number {
  let t = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

function built(dir: string): boolean {
  const entry = join(dir, 'dist', 'esm', 'index.js')
  return existsSync(entry) && existsSync(join(dir, 'dist', 'cjs', 'index.js')) && statSync(entry).mtimeMs >= newest(join(dir, 'src'))
}

/**
 * Builds a package's dist if it is missing or older than its src, for tests that spawn a plain
 * `node` (which imports dist, as users do). A lock dir keeps test files that run at once from
 * building the same package together. Returns the ESM entry.
 */
export function ensureBuilt(pkg: string): string {
  const dir = join(repoRoot, 'packages', pkg)
  const lock = join(tmpdir(), `fdrecycle-build-${pkg}.lock`)
  const deadline = Date.now() + 120_000
  while (!built(dir)) {
    try {
      mkdirSync(lock)
    } catch {
      if (Date.now() > deadline) throw new Error(`${lock} held for 120 s; remove it if no build is running`)
      execFileSync('sleep', ['0.2'])
      continue
    }
    try {
      if (!built(dir)) execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-package.mjs')], { cwd: dir, stdio: 'pipe' })
    } finally {
      rmdirSync(lock)
    }
  }
  return join(dir, 'dist', 'esm', 'index.js')
}
