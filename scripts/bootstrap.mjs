#!/usr/bin/env node
// The README's commands start here: `npm test`, `npm run demo`, `npm run bench`, `npm run soak`,
// `npm run conformance`.
// Each first installs what it needs (npm packages; Debian's servers for tests), then builds the
// packages, then runs. Works on a fresh clone of a fresh machine (Debian, Node 20.19+, npm, root).
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureDebianPackages } from './system-deps.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [task = 'test', ...rest] = process.argv.slice(2)

function log(message) {
  process.stderr.write(`[fdrecycle] ${message}\n`)
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options })
  if (r.error) throw r.error
  return r.status ?? 1
}

function ensureNpmPackages() {
  const marker = join(root, 'node_modules', '.package-lock.json')
  const lock = join(root, 'package-lock.json')
  const fresh = existsSync(marker) && existsSync(lock) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs
  if (fresh && existsSync(join(root, 'node_modules', 'vitest'))) return
  log('installing npm packages')
  const status = run('npm', ['install', '--no-audit', '--no-fund'])
  if (status !== 0) process.exit(status)
}

function build() {
  log('building packages')
  const status = run(process.execPath, [join(root, 'node_modules', 'turbo', 'bin', 'turbo'), 'run', 'build', '--output-logs=errors-only'])
  if (status !== 0) process.exit(status)
}

const major = Number(process.versions.node.split('.')[0])
const minor = Number(process.versions.node.split('.')[1])
if (major < 20 || (major === 20 && minor < 19)) {
  log(`Node ${process.version} is too old: fdrecycle needs Node 20.19 or later`)
  process.exit(1)
}

ensureNpmPackages()
build()

switch (task) {
  case 'test': {
    // Debian's servers for the end-to-end tests (the vitest global setups start and stop them),
    // and a C compiler for the fault suites' TUN relay.
    ensureDebianPackages(['postgresql', 'redis-server', 'redis-tools', 'nginx', 'mariadb-server', 'mariadb-client', 'iproute2', 'openssl', 'strace', 'gcc', 'libc6-dev'])
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
    const status = run(process.execPath, [vitest, 'run', ...rest])
    if (status !== 0 || rest.length > 0) process.exit(status)
    // The fallback: the adapters' suites again with recycling switched off (plain sockets).
    log('adapter suites again with recycling unsupported (FDRECYCLE_DISABLE=1)')
    process.exit(
      run(process.execPath, [vitest, 'run', '--project', 'pg', '--project', 'redis', '--project', 'http', '--project', 'mysql', '--project', 'postgresjs'], {
        env: { ...process.env, FDRECYCLE_DISABLE: '1' },
      }),
    )
    break
  }
  case 'demo':
    // ss and ip (iproute2): the demo's TIME_WAIT and local-port counts and its port-exhaustion part
    if (spawnSync('ss', ['-V']).status !== 0) {
      try {
        ensureDebianPackages(['iproute2'])
      } catch (err) {
        log(`${err.message}: the demo runs without its TIME_WAIT and port counts`)
      }
    }
    process.exit(run(process.execPath, [join(root, 'examples', 'demo', 'index.mjs'), ...rest]))
    break
  case 'bench':
    ensureDebianPackages(['postgresql', 'redis-server', 'redis-tools', 'nginx', 'mariadb-server', 'mariadb-client', 'iproute2', 'strace', 'gcc', 'libc6-dev'])
    process.exit(run(process.execPath, [join(root, 'bench', 'index.mjs'), ...rest]))
    break
  case 'soak': {
    // The core's long runs, and the adapters' churn tests at full length (npm test runs them short).
    ensureDebianPackages(['postgresql', 'redis-server', 'redis-tools', 'nginx', 'iproute2', 'openssl'])
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
    const files = rest.length > 0 ? rest : ['packages/core/test/', 'packages/pg-adapter/test/pool-churn', 'packages/redis-adapter/test/cluster', 'packages/http-adapter/test/reverse-proxy']
    process.exit(run(process.execPath, [vitest, 'run', '--project', 'core', '--project', 'pg', '--project', 'redis', '--project', 'http', ...files], { env: { ...process.env, FDRECYCLE_SOAK: '1' } }))
    break
  }
  case 'conformance':
    // Node's own net tests, plain and recycled (test/conformance/README.md): apt-get fetches them,
    // each runs in a network namespace of its own (ip brings its loopback up).
    ensureDebianPackages(['xz-utils', 'iproute2'])
    process.exit(run(process.execPath, [join(root, 'test', 'conformance', 'run.mjs'), ...rest]))
    break
  default:
    log(`unknown task ${task}`)
    process.exit(2)
}
