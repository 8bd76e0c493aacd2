// `prepack` of every package: a tarball never ships `src/*.ts` alone. Builds `dist` when it is
// missing or older than a source file, then checks that both builds and the LICENSE are there.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cwd = process.cwd()
const entries = ['dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts']

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

const missing = () => entries.filter((f) => !existsSync(join(cwd, f)))
const stale = () => statSync(join(cwd, 'dist/cjs/index.js')).mtimeMs < Math.max(newestMtime(join(cwd, 'src')), statSync(join(cwd, 'tsconfig.json')).mtimeMs)
if (missing().length > 0 || stale()) {
  const build = join(dirname(fileURLToPath(import.meta.url)), 'build-package.mjs')
  process.stderr.write(`prepack: building ${cwd}\n`)
  execFileSync(process.execPath, [build], { cwd, stdio: 'inherit' })
}
const problems = [...missing().map((f) => `${f} is missing`), ...(existsSync(join(cwd, 'LICENSE')) ? [] : ['LICENSE is missing'])]
if (problems.length > 0) {
  process.stderr.write(`prepack: refusing to pack: ${problems.join(', ')}\n`)
  process.exit(1)
}
