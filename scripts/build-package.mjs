// Builds the package in the current directory twice: ESM (dist/esm) and CommonJS (dist/cjs),
// each with declarations, so that `import` and `require` both resolve with types.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
const tsc = require.resolve('typescript/bin/tsc')
const cwd = process.cwd()
rmSync(join(cwd, 'dist'), { recursive: true, force: true })
const run = (args) => execFileSync(process.execPath, [tsc, ...args], { stdio: 'inherit', cwd })
run(['-p', 'tsconfig.json', '--outDir', 'dist/esm'])
run(['-p', 'tsconfig.json', '--outDir', 'dist/cjs', '--module', 'CommonJS', '--moduleResolution', 'Node10'])
mkdirSync(join(cwd, 'dist/cjs'), { recursive: true })
writeFileSync(join(cwd, 'dist/cjs/package.json'), '{ "type": "commonjs" }\n')
writeFileSync(join(cwd, 'dist/esm/package.json'), '{ "type": "module" }\n')
// Files that need `import.meta` in ESM get their CommonJS twin here (TS cannot emit it to CJS).
const cjsTwins = {
  'ffi/koffi-require.js': '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.koffiRequire = require;\n',
  'local-require.js': '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.localRequire = require;\n',
}
for (const [file, text] of Object.entries(cjsTwins)) {
  if (existsSync(join(cwd, 'dist/cjs', file))) writeFileSync(join(cwd, 'dist/cjs', file), text)
}
