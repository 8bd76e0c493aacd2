// Fetches Node's own tests (test/parallel, test/common, test/fixtures) from Debian 13's `nodejs`
// source package (Node 20) and caches them under .cache/conformance. apt runs with a private
// sources list, lists and cache directory: the machine's own apt set-up is read (for its Debian
// mirror) and never written. The sources index is signed and apt checks every file it downloads
// against it, so the tarball is the one Debian published.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Debian 13 ships Node 20 (the tests the runner uses on every Node major, as issue 11 asks). */
const SUITE = 'trixie'
const SOURCE_PACKAGE = 'nodejs'
const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'
/** Debian archive suites (not security, not third-party repositories such as `nodistro`). */
const DEBIAN_SUITE = /^(buster|bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)(-updates|-backports)?$/
/** What the runner selects, plus what those tests load. */
const WANTED = ['test/common', 'test/fixtures', 'test/parallel/test-net-*', 'test/parallel/test-socket-*', 'test/parallel/test-tls-connect-*']

function log(message) {
  process.stderr.write(`[conformance] ${message}\n`)
}

/** apt's own rule: sources.list plus sources.list.d/*.list and *.sources. */
function machineSourceFiles() {
  const files = []
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list')
  const dir = '/etc/apt/sources.list.d'
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(dir, name))
    }
  }
  return files
}

/** `{ uri, signedBy }` of the machine's Debian archive `deb` line (one-line or deb822 format). */
export function machineDebianMirror(files = machineSourceFiles()) {
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = {}
        for (const line of stanza.split('\n')) {
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line)
          if (m) fields[m[1].toLowerCase()] = m[2].trim()
        }
        if (fields.enabled === 'no') continue
        if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue
        if (!(fields.suites ?? '').split(/\s+/).some((s) => DEBIAN_SUITE.test(s))) continue
        const uri = (fields.uris ?? '').split(/\s+/)[0]
        if (uri) return { uri, signedBy: fields['signed-by'] && !fields['signed-by'].includes('\n') ? fields['signed-by'] : undefined }
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim()
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line)
        if (!m || !DEBIAN_SUITE.test(m[3])) continue
        const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1]
        return { uri: m[2], signedBy }
      }
    }
  }
  return undefined
}

function aptOptions(work) {
  return [
    '-o', `Dir::Etc::sourcelist=${join(work, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(work, 'lists')}`,
    '-o', `Dir::Cache=${join(work, 'cache')}`,
    '-o', 'APT::Get::List-Cleanup=0',
  ]
}

function apt(args, cwd) {
  const r = spawnSync('apt-get', args, { cwd, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } })
  if (r.error) throw r.error
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` }
}

function lockDir(path) {
  const deadline = Date.now() + 600_000
  for (;;) {
    try {
      mkdirSync(path)
      return () => rmSync(path, { recursive: true, force: true })
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
      if (Date.now() > deadline) throw new Error(`${path} held for 10 minutes; remove it if no conformance run is fetching`)
      spawnSync('sleep', ['1'])
    }
  }
}

/**
 * Returns `{ root, version }`: `root` holds `test/parallel`, `test/common` and `test/fixtures` of
 * Node `version`. Downloads and extracts them on first use; later runs use the cache.
 */
export function nodeTests(cacheDir) {
  const root = join(cacheDir, 'node-tests')
  const marker = join(root, '.fetched')
  if (existsSync(marker)) return { root, version: readFileSync(marker, 'utf8').trim() }
  mkdirSync(cacheDir, { recursive: true })
  const unlock = lockDir(join(cacheDir, '.fetch.lock'))
  try {
    if (existsSync(marker)) return { root, version: readFileSync(marker, 'utf8').trim() }
    const mirror = process.env.FDRECYCLE_DEBIAN_MIRROR
      ? { uri: process.env.FDRECYCLE_DEBIAN_MIRROR, signedBy: undefined }
      : machineDebianMirror()
    if (!mirror) throw new Error('no Debian `deb` line in /etc/apt/sources.list*; set FDRECYCLE_DEBIAN_MIRROR to a Debian mirror URI')
    const work = join(cacheDir, 'apt')
    const download = join(work, 'source')
    rmSync(work, { recursive: true, force: true })
    for (const dir of [join(work, 'lists', 'partial'), join(work, 'cache', 'archives', 'partial'), download]) mkdirSync(dir, { recursive: true })
    const signedBy = mirror.signedBy ?? DEFAULT_KEYRING
    writeFileSync(join(work, 'sources.list'), `deb-src [signed-by=${signedBy}] ${mirror.uri} ${SUITE} main\n`)
    log(`fetching the ${SOURCE_PACKAGE} source package of Debian ${SUITE} (Node's own tests)`)
    const update = apt([...aptOptions(work), 'update'], work)
    if (!update.ok) throw new Error(`apt-get update (${SUITE} sources) failed:\n${update.output}`)
    const source = apt([...aptOptions(work), 'source', '--download-only', SOURCE_PACKAGE], download)
    // Only the upstream tarball is needed. A mirror may lag on Debian's own (debian.tar, .dsc)
    // files of a point release while the orig tarball, shared by all revisions, is there.
    const orig = readdirSync(download).find((name) => /^nodejs_[\d.]+\+dfsg\.orig\.tar\.xz$/.test(name))
    if (!orig) throw new Error(`apt-get source ${SOURCE_PACKAGE} gave no upstream tarball:\n${source.output}`)
    const version = /^nodejs_([\d.]+)\+/.exec(orig)[1]
    const staging = `${root}.partial`
    rmSync(staging, { recursive: true, force: true })
    mkdirSync(staging, { recursive: true })
    const tar = spawnSync('tar', [
      '-xJf', join(download, orig), '-C', staging, '--strip-components=1', '--wildcards', '--no-wildcards-match-slash',
      ...WANTED.map((p) => `node-v${version}/${p}`),
    ], { encoding: 'utf8' })
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`)
    // The tests are CommonJS; without this the repository's `"type": "module"` would apply.
    writeFileSync(join(staging, 'package.json'), '{ "type": "commonjs" }\n')
    writeFileSync(join(staging, '.fetched'), `${version}\n`)
    rmSync(root, { recursive: true, force: true })
    renameSync(staging, root)
    rmSync(work, { recursive: true, force: true })
    log(`Node v${version} tests cached in ${root}`)
    return { root, version }
  } finally {
    unlock()
  }
}
