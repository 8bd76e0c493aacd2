import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
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

/** Builds a package's dist if it is missing or older than its src (for tests that spawn plain node). */
export function ensureBuilt(pkg: string): string {
  const dir = join(repoRoot, 'packages', pkg)
  const entry = join(dir, 'dist', 'esm', 'index.js')
  if (!existsSync(entry) || statSync(entry).mtimeMs < newest(join(dir, 'src'))) {
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-package.mjs')], { cwd: dir, stdio: 'ignore' })
  }
  return entry
}
