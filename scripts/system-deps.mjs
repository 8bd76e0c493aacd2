// Debian packages the tests and benchmarks need, installed when missing (root, apt-get).
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.includes('install ok installed')
}

/** Installs the missing ones; serialised across processes by a lock directory. */
export function ensureDebianPackages(packages) {
  const missing = packages.filter((p) => !installed(p))
  if (missing.length === 0) return
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`missing Debian packages ${missing.join(', ')}; install them (apt-get install ${missing.join(' ')}) or run as root`)
  }
  const lock = '/tmp/fdrecycle-apt.lock'
  const deadline = Date.now() + 600_000
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`)
      spawnSync('sleep', ['1'])
    }
  }
  try {
    const still = packages.filter((p) => !installed(p))
    if (still.length === 0) return
    process.stderr.write(`[fdrecycle] installing Debian packages: ${still.join(' ')}\n`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...still], { stdio: 'inherit', env })
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit', env })
      r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...still], { stdio: 'inherit', env })
    }
    if (r.status !== 0) throw new Error(`apt-get install ${still.join(' ')} failed`)
    // Debian starts the services it installs; tests start their own on free ports.
    for (const service of ['postgresql', 'redis-server', 'nginx', 'mariadb']) {
      if (still.some((p) => p.startsWith(service))) spawnSync('service', [service, 'stop'], { stdio: 'ignore' })
    }
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}
