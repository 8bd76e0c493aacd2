#!/usr/bin/env node
// The adapters' suites against the ends of each supported peer range (CI runs both on one Node):
//   node scripts/peer-range.mjs lowest    pg 8.9.0, ioredis 5.0.0, undici 6.0.0, mysql2 3.15.0, postgres 3.4.4
//   node scripts/peer-range.mjs highest   the newest pg 8, ioredis 6, undici 7, mysql2 3 and postgres 3
// The versions are installed into .cache/peers-<end> and replace the workspace's through
// vitest.config.ts (FDRECYCLE_PEERS_DIR). Extra arguments go to vitest.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// Keep in step with the adapters' peerDependencies ranges. ioredis5 is the tests' alias for the
// 5 line (packages/redis-adapter/test/helpers.ts runs every case on 5 and 6).
const ends = {
  lowest: { pg: '8.9.0', ioredis5: 'npm:ioredis@5.0.0', undici: '6.0.0', mysql2: '3.15.0', postgres: '3.4.4' },
  highest: { pg: '^8', ioredis: '^6', undici: '^7', mysql2: '^3', postgres: '^3' },
}
const [end, ...rest] = process.argv.slice(2)
if (!(end in ends)) {
  process.stderr.write(`usage: node scripts/peer-range.mjs <${Object.keys(ends).join('|')}> [vitest args]\n`)
  process.exit(2)
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options })
  if (r.error) throw r.error
  return r.status ?? 1
}

const prefix = join(root, '.cache', `peers-${end}`)
mkdirSync(prefix, { recursive: true })
writeFileSync(join(prefix, 'package.json'), `${JSON.stringify({ name: `peers-${end}`, private: true, dependencies: ends[end] }, null, 2)}\n`)
if (run('npm', ['install', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: prefix }) !== 0) process.exit(1)
const versions = Object.keys(ends[end]).map((name) => `${name} ${JSON.parse(readFileSync(join(prefix, 'node_modules', name, 'package.json'), 'utf8')).version}`)
process.stderr.write(`[fdrecycle] adapter suites against the ${end} peer versions: ${versions.join(', ')}\n`)

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
const env = { ...process.env, FDRECYCLE_PEERS_DIR: prefix }
// First prove that the tests import these versions, then run the adapters' suites on them.
if (run(process.execPath, [vitest, 'run', '--project', 'e2e', 'test/peer-versions.test.ts'], { env }) !== 0) process.exit(1)
process.exit(run(process.execPath, [vitest, 'run', '--project', 'pg', '--project', 'redis', '--project', 'http', '--project', 'mysql', '--project', 'postgresjs', ...rest], { env }))
