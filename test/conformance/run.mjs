#!/usr/bin/env node
// The conformance runner (README.md beside this file): Node's own net tests, each run with plain
// Node and then with net routed through a SocketRecycler (preload.mjs), with a cold and with a
// warm pool. Fails on any test that passes plain and fails recycled.
//
//   node test/conformance/run.mjs [name-filter ...]
//
// Environment:
//   FDRECYCLE_CONFORMANCE=report     print the differences but exit 0 (for development)
//   FDRECYCLE_CONFORMANCE_JOBS       tests run at once (default 2)
//   FDRECYCLE_CONFORMANCE_TIMEOUT_MS one test's bound (default 60000)
//   FDRECYCLE_CONFORMANCE_BUDGET_MS  the whole run's bound (default 1200000)
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { EXCLUSIONS, KNOWN_DIFFERENCES } from './exclusions.mjs'
import { nodeTests } from './fetch-node-tests.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..', '..')
const cacheDir = join(repoRoot, '.cache', 'conformance')
const preload = pathToFileURL(join(here, 'preload.mjs')).href

const SELECTED = /^test-(net|socket|tls-connect)-.*\.m?js$/
const MODES = ['plain', 'cold', 'warm']

function intEnv(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`)
  return value
}

const reportOnly = process.env.FDRECYCLE_CONFORMANCE === 'report'
if (process.env.FDRECYCLE_CONFORMANCE && !reportOnly) {
  throw new Error(`FDRECYCLE_CONFORMANCE must be 'report' or unset, got ${JSON.stringify(process.env.FDRECYCLE_CONFORMANCE)}`)
}
const jobs = intEnv('FDRECYCLE_CONFORMANCE_JOBS', 2)
// The slowest of these tests takes a few seconds on a loaded 2-core machine; Node's own runner
// allows 120 s for a test on slow machines.
const testTimeoutMs = intEnv('FDRECYCLE_CONFORMANCE_TIMEOUT_MS', 60_000)
const budgetMs = intEnv('FDRECYCLE_CONFORMANCE_BUDGET_MS', 1_200_000)

function log(message) {
  process.stderr.write(`[conformance] ${message}\n`)
}

/** Flags a test asks for in its header (`// Flags: --expose-internals`), as Node's test.py reads them. */
function testFlags(file) {
  const head = readFileSync(file, 'utf8').slice(0, 4000)
  const flags = []
  for (const m of head.matchAll(/^\/\/ Flags:(.*)$/gm)) flags.push(...m[1].trim().split(/\s+/).filter(Boolean))
  return flags
}

/** One line that names the failure: the error, its message, where in the test it was thrown. */
function failureLine(output, name) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean)
  let i = lines.findIndex((l) => /^(\w*Error|Uncaught|Mismatched)\b|^\w+Error \[/.test(l))
  if (i < 0) i = lines.findIndex((l) => /error|assert|expected|mismatch/i.test(l) && !l.startsWith('at '))
  if (i < 0) return (lines.at(-1) ?? '(no output)').slice(0, 240)
  let line = lines[i].replace(/ at \/\S+/, '')
  // "Expected values to be strictly equal:" says nothing without the values that follow.
  if (line.endsWith(':')) {
    const end = lines.findIndex((l, j) => j > i && l.startsWith('at '))
    const diff = lines.slice(i + 1, end < 0 ? i + 8 : end).filter((l) => l !== '+ actual - expected')
    line += ` ${diff.slice(0, 6).join(' ')}`
  }
  // assert.throws() shows what was thrown instead only among the error's properties.
  const actual = lines.find((l, j) => j > i && /^actual: \w*Error\b/.test(l))
  if (actual && !line.includes(actual.slice(8))) line += ` (${actual})`
  const where = output.match(new RegExp(`test/parallel/${name.replace(/[.]/g, '\\.')}:(\\d+)`))
  return `${line.slice(0, 300)}${where ? ` (${name}:${where[1]})` : ''}`
}

/** Modes in which exclusions.mjs keeps a test from running. */
function excludedModes(name) {
  return EXCLUSIONS.get(name)?.modes ?? []
}

/**
 * Each test runs in a network namespace of its own with only loopback up: some of Node's tests
 * connect to addresses on the internet (documentation addresses, example.org's through mocked
 * lookups) or resolve names; here those fail at once, the same way plain and recycled, and no
 * packet leaves the machine. The namespace ends with the test's last process: nothing to delete.
 */
function isolated(command, args) {
  const unshare = ['--net', ...(process.getuid?.() === 0 ? [] : ['--map-root-user'])]
  return ['unshare', [...unshare, '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', command, ...args]]
}

function checkIsolation() {
  const [command, args] = isolated(process.execPath, ['-e', 'process.exit(require("os").networkInterfaces().lo ? 0 : 3)'])
  const r = spawnSync(command, args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    throw new Error(
      `cannot run a test in a network namespace of its own (unshare --net, then ip link set lo up): ${r.error?.message ?? r.stderr.trim() ?? `exit ${r.status}`}. ` +
        'Run as root, or where unprivileged user namespaces are allowed; iproute2 provides ip.',
    )
  }
}

/** Process groups of the tests running now, killed if the runner is interrupted. */
const running = new Set()
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const pid of running) try { process.kill(-pid, 'SIGKILL') } catch {}
    process.exit(130)
  })
}

/**
 * test/common of Node 20 fails a test that leaves a global it does not know, and later Nodes have
 * globals of their own it does not know (navigator, sessionStorage, ...). There the check is off
 * (NODE_TEST_KNOWN_GLOBALS=0, Node's own switch); the preload adds no global (its own test says
 * so), and on Node 20 the check stays on.
 */
const knownGlobals = Number(process.versions.node.split('.')[0]) > 20 ? '0' : undefined

function runTest(root, name, mode, worker) {
  const file = join(root, 'test', 'parallel', name)
  const args = [...testFlags(file)]
  if (mode !== 'plain') args.push('--import', preload)
  args.push(join('test', 'parallel', name))
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('FDRECYCLE_') || key === 'NODE_OPTIONS') delete env[key]
  // Each worker its own tmpdir (test/common/tmpdir.js) and common.PORT, as Node's runner does.
  env.TEST_THREAD_ID = String(worker)
  env.NODE_COMMON_PORT = String(12346 + 100 * worker)
  if (knownGlobals !== undefined) env.NODE_TEST_KNOWN_GLOBALS = knownGlobals
  let statsFile
  if (mode !== 'plain') {
    env.FDRECYCLE_CONFORMANCE_POOL = mode
    statsFile = join(cacheDir, 'stats', `${worker}.json`)
    rmSync(statsFile, { force: true })
    env.FDRECYCLE_CONFORMANCE_STATS = statsFile
  }
  const started = Date.now()
  return new Promise((resolve) => {
    const [command, isolatedArgs] = isolated(process.execPath, args)
    const child = spawn(command, isolatedArgs, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    running.add(child.pid)
    let output = ''
    let stdout = ''
    const take = (chunk, isStdout) => {
      const text = chunk.toString()
      if (isStdout) stdout += text.slice(0, 4096 - stdout.length)
      if (output.length < 1_000_000) output += text
    }
    child.stdout.on('data', (c) => take(c, true))
    child.stderr.on('data', (c) => take(c, false))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      // The test's whole process group: a test may have spawned children of its own.
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, testTimeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      running.delete(child.pid)
      const ms = Date.now() - started
      let stats
      if (statsFile && existsSync(statsFile)) {
        const lines = readFileSync(statsFile, 'utf8').trim().split('\n').filter(Boolean)
        stats = lines.map((l) => JSON.parse(l)).find((s) => s.pid === child.pid) ?? lines.map((l) => JSON.parse(l))[0]
      }
      const skipped = code === 0 && /^1\.\.0 # Skipped/m.test(stdout)
      const passed = code === 0 && !timedOut && !skipped
      const reason = timedOut
        ? `timed out after ${testTimeoutMs} ms`
        : skipped
          ? stdout.match(/^1\.\.0 # Skipped:?(.*)$/m)?.[1]?.trim() || 'skipped'
          : passed ? '' : `${signal ? `killed by ${signal}` : `exit ${code}`}: ${failureLine(output, name)}`
      resolve({ name, mode, passed, skipped, timedOut, reason, ms, output, stats })
    })
  })
}

async function main() {
  const filters = process.argv.slice(2)
  // The preload imports the built package, as users do (`npm run conformance` builds first).
  if (!existsSync(join(repoRoot, 'packages', 'core', 'dist', 'esm', 'index.js'))) {
    throw new Error('packages/core/dist is missing: run `npm run build`, or `npm run conformance`, which builds')
  }
  const { root, version } = nodeTests(cacheDir)
  checkIsolation()
  const tests = readdirSync(join(root, 'test', 'parallel'))
    .filter((n) => SELECTED.test(n))
    .filter((n) => filters.length === 0 || filters.some((f) => n.includes(f)))
    .sort()
  if (tests.length === 0) throw new Error(`no test matches ${filters.join(' ')}`)
  for (const name of [...EXCLUSIONS.keys(), ...KNOWN_DIFFERENCES.keys()]) {
    if (!existsSync(join(root, 'test', 'parallel', name))) throw new Error(`exclusions.mjs names ${name}, which the Node v${version} tests do not have`)
  }
  mkdirSync(join(cacheDir, 'stats'), { recursive: true })
  const logs = join(cacheDir, 'logs')
  rmSync(logs, { recursive: true, force: true })
  mkdirSync(logs, { recursive: true })
  log(`Node ${process.version}: ${tests.length} tests of Node v${version} (test/parallel), plain, then recycled with a cold and a warm pool; ${jobs} at a time`)

  const started = Date.now()
  const results = new Map(tests.map((n) => [n, {}]))
  const retried = []
  // Plain first; a test that passes plain gets its recycled runs queued right after.
  const queue = tests.map((name) => ({ name, mode: 'plain', attempt: 1 }))
  let overBudget = 0

  async function worker(id) {
    for (;;) {
      const job = queue.shift()
      if (!job) return
      if (Date.now() - started > budgetMs) {
        overBudget++
        continue
      }
      const result = await runTest(root, job.name, job.mode, id)
      const entry = results.get(job.name)
      if (!result.passed && !result.skipped && job.attempt === 1) {
        // One more try before it counts: these tests race timers and the machine is shared.
        // A recycled failure that passes the second time is listed as such.
        retried.push({ name: job.name, mode: job.mode, reason: result.reason })
        queue.unshift({ ...job, attempt: 2, first: result })
        continue
      }
      if (job.first) result.firstFailure = job.first.reason
      entry[job.mode] = result
      if (!result.passed && !result.skipped) {
        writeFileSync(join(logs, `${job.name}.${job.mode}.log`), result.output)
        if (job.mode !== 'plain') log(`${job.name} [${job.mode}] fails recycled: ${result.reason}`)
      }
      result.output = undefined
      if (job.mode === 'plain' && result.passed) {
        const recycled = ['cold', 'warm'].filter((m) => !excludedModes(job.name).includes(m))
        queue.unshift(...recycled.map((mode) => ({ name: job.name, mode, attempt: 1 })))
      }
    }
  }
  await Promise.all(Array.from({ length: jobs }, (_, i) => worker(i + 1)))
  const seconds = ((Date.now() - started) / 1000).toFixed(0)

  // ---- report --------------------------------------------------------------------------------
  const plainFailed = []
  const plainSkipped = []
  const excluded = []
  const differences = []
  const known = []
  const knownNowPassing = []
  const major = Number(process.versions.node.split('.')[0])
  const isKnown = (name) => KNOWN_DIFFERENCES.get(name)?.majors.includes(major) === true
  const passedBoth = []
  const flaky = []
  let connections = 0
  let reused = 0
  for (const [name, entry] of results) {
    const plain = entry.plain
    if (!plain) continue
    if (plain.skipped) { plainSkipped.push(`${name}: ${plain.reason}`); continue }
    if (!plain.passed) { plainFailed.push(`${name}: ${plain.reason}`); continue }
    const skipModes = excludedModes(name)
    if (skipModes.length > 0) excluded.push(`${name} [${skipModes.join(', ')}]: ${EXCLUSIONS.get(name).reason}`)
    if (skipModes.length === 2) continue
    let ok = true
    const failures = new Map()
    for (const mode of ['cold', 'warm']) {
      if (skipModes.includes(mode)) continue
      const r = entry[mode]
      if (!r) { ok = false; continue }
      if (r.stats) {
        connections += r.stats.test.connections
        reused += r.stats.test.reusedConnections
      }
      const failure = r.skipped ? `skipped recycled only: ${r.reason}` : r.passed ? undefined : r.reason
      if (failure) failures.set(failure, [...(failures.get(failure) ?? []), mode])
      else if (r.firstFailure) flaky.push(`${name} [${mode}]: failed once, passed on retry: ${r.firstFailure}`)
      if (!r.passed) ok = false
    }
    // One line per test and failure: cold and warm usually fail the same way.
    for (const [failure, modes] of failures) (isKnown(name) ? known : differences).push(`${name} [${modes.join(', ')}]: ${failure}`)
    if (ok) passedBoth.push(name)
    if (ok && isKnown(name)) knownNowPassing.push(`${name}: passes recycled now; remove it from KNOWN_DIFFERENCES (${KNOWN_DIFFERENCES.get(name).reason})`)
  }
  const fullyExcluded = tests.filter((n) => excludedModes(n).length === 2 && results.get(n).plain?.passed).length
  const eligible = tests.length - plainFailed.length - plainSkipped.length - fullyExcluded
  const failedTests = new Set(differences.map((d) => d.split(' ')[0])).size
  const notRun = tests.filter((n) => {
    const e = results.get(n)
    return !e.plain || (e.plain.passed && ['cold', 'warm'].some((m) => !excludedModes(n).includes(m) && !e[m]))
  })

  const section = (title, lines) => {
    if (lines.length === 0) return
    process.stdout.write(`\n${title} (${lines.length}):\n${lines.map((l) => `  ${l}`).join('\n')}\n`)
  }
  section('Skipped: fail on plain Node', plainFailed)
  section('Skipped: skip themselves on plain Node', plainSkipped)
  section('Excluded (exclusions.mjs)', excluded)
  section('Flaky recycled: failed once, passed on retry', flaky)
  section('Not run: the run exceeded FDRECYCLE_CONFORMANCE_BUDGET_MS', overBudget > 0 ? notRun : [])
  section('Known differences (exclusions.mjs KNOWN_DIFFERENCES), not counted', known)
  section('KNOWN DIFFERENCES THAT NOW PASS', knownNowPassing)
  section('DIFFERENCES: pass plain, fail recycled (logs in .cache/conformance/logs)', differences)
  process.stdout.write(
    `\nNode ${process.version}, tests of Node v${version}: ${passedBoth.length} of ${eligible} tests that pass plain also pass recycled ` +
      `with a cold and a warm pool; ${failedTests} fail recycled; ${known.length} known differences; ${plainFailed.length + plainSkipped.length} skipped plain, ` +
      `${excluded.length} excluded (in some or all modes); ${connections} recycled connections, ${reused} on reused fds; ${seconds} s\n`,
  )
  writeFileSync(
    join(cacheDir, `report-node${process.versions.node.split('.')[0]}.json`),
    JSON.stringify({ node: process.version, tests: version, seconds: Number(seconds), passedBoth, differences, known, knownNowPassing, flaky, plainFailed, plainSkipped, excluded, notRun: overBudget > 0 ? notRun : [] }, null, 2),
  )

  let failed = differences.length > 0 || knownNowPassing.length > 0 || (overBudget > 0 && notRun.length > 0)
  // Most of these tests pass on every Node major; if most fail plain, the harness is broken
  // (test/common against this Node, the environment), and a comparison would prove nothing.
  if (filters.length === 0 && plainFailed.length > tests.length / 4) {
    process.stdout.write(`${plainFailed.length} of ${tests.length} tests fail on plain Node: the harness does not work here\n`)
    failed = true
  }
  // The route itself: if no test's connection went through the recycler (or none reused an fd
  // with a warm pool), the preload is not doing its job and every "pass" above means nothing.
  if (filters.length === 0 && (connections === 0 || reused === 0)) {
    process.stdout.write(`the recycled runs made ${connections} connections through the recycler, ${reused} on reused fds: the preload did not route net\n`)
    failed = true
  }
  if (failed && reportOnly) {
    process.stdout.write('FDRECYCLE_CONFORMANCE=report: exiting 0 despite the differences above\n')
    return 0
  }
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(error.stack ?? String(error))
    process.exit(1)
  },
)
