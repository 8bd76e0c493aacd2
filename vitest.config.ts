import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// Tests import the packages' sources (no build step), as tRPC does.
const alias = {
  '@fdrecycle/core': here('./packages/core/src/index.ts'),
  '@fdrecycle/pg-adapter': here('./packages/pg-adapter/src/index.ts'),
  '@fdrecycle/redis-adapter': here('./packages/redis-adapter/src/index.ts'),
  '@fdrecycle/http-adapter': here('./packages/http-adapter/src/index.ts'),
  '@fdrecycle/mysql-adapter': here('./packages/mysql-adapter/src/index.ts'),
  '@fdrecycle/postgresjs-adapter': here('./packages/postgresjs-adapter/src/index.ts'),
  '@fdrecycle/auto': here('./packages/auto/src/index.ts'),
}

// FDRECYCLE_PEERS_DIR=<prefix>: the peer clients (pg, ioredis, ioredis5, undici, mysql2, postgres) installed under
// <prefix>/node_modules replace the workspace's, so CI can run the adapters against the lowest
// and highest versions of each supported range (scripts/peer-range.mjs).
const peersDir = process.env.FDRECYCLE_PEERS_DIR
const peerAliases = peersDir
  ? ['pg', 'ioredis', 'ioredis5', 'undici', 'mysql2', 'postgres']
      .filter((name) => existsSync(`${peersDir}/node_modules/${name}/package.json`))
      .map((name) => ({ find: new RegExp(`^${name}(/.*)?$`), replacement: `${peersDir}/node_modules/${name}$1` }))
  : []

export default defineConfig({
  resolve: { alias: [...peerAliases, ...Object.entries(alias).map(([find, replacement]) => ({ find, replacement }))] },
  test: {
    pool: 'forks',
    // Most files wait on the network and on servers, not on the CPU: three at a time take about two
    // thirds of the time one at a time does on two cores (vitest's default there is one).
    // `--maxWorkers` overrides it.
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default'],
    projects: ([
      { extends: true, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'pg',
          include: ['packages/pg-adapter/test/**/*.test.ts'],
          globalSetup: ['test/setup/postgres.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'redis',
          include: ['packages/redis-adapter/test/**/*.test.ts'],
          globalSetup: ['test/setup/redis.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'http',
          include: ['packages/http-adapter/test/**/*.test.ts'],
          globalSetup: ['test/setup/nginx.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'mysql',
          include: ['packages/mysql-adapter/test/**/*.test.ts'],
          globalSetup: ['test/setup/mariadb.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'postgresjs',
          include: ['packages/postgresjs-adapter/test/**/*.test.ts'],
          globalSetup: ['test/setup/postgres.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'auto',
          include: ['packages/auto/test/**/*.test.ts'],
          // One file at a time: their child processes share one PostgreSQL, and a plain run's
          // client TIME_WAIT on a local port that a recycled run of another file used before would
          // be counted against it (TIME_WAIT is attributed by port).
          fileParallelism: false,
          globalSetup: ['test/setup/postgres.ts', 'test/setup/redis.ts', 'test/setup/nginx.ts'],
        },
      },
      { extends: true, test: { name: 'e2e', include: ['test/**/*.test.ts'] } },
    ] as const).filter((p) => ((p.test as { globalSetup?: string[] }).globalSetup ?? []).every((f) => existsSync(here(`./${f}`)))),
  },
})
