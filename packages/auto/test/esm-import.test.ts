// What require-in-the-middle sees of pg, ioredis and undici on the running Node when an ESM app
// imports them, and when a CommonJS app requires them. The preload relies on the files *inside*
// each package (loaded by the package's own require) being seen in both cases (src/hook.ts).
import { describe, expect, it } from 'vitest'
import { runNode } from './helpers.js'

const INTERNALS = ['ioredis/built/Redis', 'ioredis/built/connectors/SentinelConnector', 'pg/lib/connection', 'undici/lib/global']

describe(`require-in-the-middle on Node ${process.versions.node}`, () => {
  it('an ESM import of each client: every hooked internal file is seen, the main files are not (the ESM loader loads them)', async () => {
    const r = await runNode(['-r', './ritm-seen.cjs', 'import-clients.mjs'])
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout.trim())).toEqual(INTERNALS)
  })

  it('a CommonJS require of each client: the main files and the internal files are seen', async () => {
    const r = await runNode(['-r', './ritm-seen.cjs', 'require-clients.cjs'])
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout.trim())).toEqual(['ioredis', ...INTERNALS.slice(0, 2), 'pg', 'pg/lib/connection', 'undici', 'undici/lib/global'])
  })
})
