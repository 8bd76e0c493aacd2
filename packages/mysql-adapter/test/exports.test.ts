import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const pkgDir = fileURLToPath(new URL('..', import.meta.url))
// The built package (npm test builds it first; `npx vitest` alone may run before any build).
const built = existsSync(`${pkgDir}dist/esm/index.js`) && existsSync(`${pkgDir}dist/cjs/index.js`)

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', timeout: 30_000 })
}

// The factory's socket dials port 9 on loopback (nothing listens there): it is destroyed at once.
const probe = `
  const names = Object.keys(m).sort().join(',');
  const r = new m.SocketRecycler();
  const f = m.mysqlStream(r);
  const s = f({ config: { host: '127.0.0.1', port: 9 } });
  s.on('error', () => {});
  const socket = s.constructor.name;
  s.destroy();
  let threw = '';
  try { m.mysqlStream(42) } catch (e) { threw = e.code }
  console.log(JSON.stringify({ names, factory: typeof f, socket, threw }));
  r.close();
`

describe.runIf(built)('the published entry points (dist)', () => {
  const expected = {
    names: 'SocketRecycler,defaultRecycler,isRecyclingSupported,mysqlStream',
    factory: 'function',
    socket: 'RecycledSocket',
    threw: 'ERR_FDRECYCLE_INVALID_ARGUMENT',
  }

  it('require() resolves the CommonJS build', () => {
    const out = node(['-e', `const m = require('@fdrecycle/mysql-adapter'); ${probe}`])
    expect(JSON.parse(out)).toEqual(expected)
    expect(node(['-p', "require.resolve('@fdrecycle/mysql-adapter')"]).trim()).toMatch(/dist\/cjs\/index\.js$/)
  })

  it('import resolves the ESM build', () => {
    const out = node(['--input-type=module', '-e', `import * as m from '@fdrecycle/mysql-adapter'; ${probe}`])
    expect(JSON.parse(out)).toEqual(expected)
    expect(node(['--input-type=module', '-e', "console.log(import.meta.resolve('@fdrecycle/mysql-adapter'))"]).trim()).toMatch(/dist\/esm\/index\.js$/)
  })
})
