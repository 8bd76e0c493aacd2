import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The public API's types, checked by the compiler itself: test/types/public-api.test-d.ts uses
// them as an application would (per-socket finDelayMs, net.Socket's connect overloads) and
// asserts with @ts-expect-error what must not compile (the socket-facing internals).

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const project = fileURLToPath(new URL('../types/tsconfig.json', import.meta.url))

describe('public types', () => {
  it('public-api.test-d.ts compiles under the repository tsconfig (strict)', async () => {
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', project], (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })
      })
    })
    expect(result.out).toBe('')
    expect(result.code).toBe(0)
  }, 120_000) // tsc takes up to 30 s on a loaded 2-core machine
})
