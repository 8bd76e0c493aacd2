// TEMPORARY (not for commit): the pg tests against a patched copy of the core in /tmp/corefix.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
export default defineConfig({
  resolve: { alias: { '@fdrecycle/core': '/tmp/corefix/src/index.ts', '@fdrecycle/pg-adapter': here('./packages/pg-adapter/src/index.ts') } },
  test: { pool: 'forks', testTimeout: 60_000, hookTimeout: 180_000, projects: [
    { extends: true, test: { name: 'pg', include: ['packages/pg-adapter/test/**/*.test.ts'], globalSetup: ['test/setup/postgres.ts'] } },
    { extends: true, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'] } },
  ] },
})
