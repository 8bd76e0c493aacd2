#!/usr/bin/env node
// npm run bench [-- --quick] [-- --only tcp,exhaustion] [-- --rounds N] [-- --list]
// The evidence: interleaved A/B runs (plain vs recycled) per scenario; writes
// bench/results/<stamp>.json, bench/results/latest.{json,md,svg}. See bench/README.md.
// Needs the packages built (`npm run bench` does it through scripts/bootstrap.mjs).
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { isRecyclingSupported, recyclingSupport } from '@fdrecycle/core'
import { chart } from './lib/chart.mjs'
import { cleanupAll } from './lib/cleanup.mjs'
import { parseCli } from './lib/cli.mjs'
import { BENCH_DIR } from './lib/procs.mjs'
import { markdown } from './lib/report.mjs'
import { machineInfo, machineLine, sourceInfo } from './lib/system.mjs'
import * as exhaustion from './scenarios/exhaustion.mjs'
import * as fanout from './scenarios/fanout.mjs'
import * as goodbye from './scenarios/goodbye.mjs'
import * as httpChurn from './scenarios/http.mjs'
import * as httpNodeChurn from './scenarios/http-node.mjs'
import * as httpProxy from './scenarios/http-proxy.mjs'
import * as mysqlChurn from './scenarios/mysql.mjs'
import * as pgChurn from './scenarios/pg.mjs'
import * as postgresjsChurn from './scenarios/postgresjs.mjs'
import * as redisChurn from './scenarios/redis.mjs'
import * as syscalls from './scenarios/syscalls.mjs'
import * as tcp from './scenarios/tcp.mjs'

const SCENARIOS = [tcp, goodbye, pgChurn, postgresjsChurn, mysqlChurn, redisChurn, httpChurn, httpNodeChurn, httpProxy, fanout, exhaustion, syscalls]

const USAGE = `usage: npm run bench [-- options]
  --quick           fewer rounds and connections (about 2 minutes; numbers only indicative)
  --only <names>    run these scenarios only (comma-separated, or repeat the flag)
  --rounds <n>      A/B rounds per scenario (default 7, --quick 3)
  --duration <s>    seconds of the time-based scenarios (fanout; default 60, --quick 15)
  --out <dir>       where results go (default bench/results)
  --list            list the scenarios and exit
scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`

const { args } = parseCli({
  quick: { type: 'boolean', default: false },
  only: { type: 'string', multiple: true },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  out: { type: 'string' },
  list: { type: 'boolean', default: false },
}, USAGE)
if (args.list) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(12)} ${s.title}\n`)
  process.exit(0)
}

const only = (args.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)
const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n))
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}\n${USAGE}\n`)
  process.exit(2)
}
const rounds = args.rounds === undefined ? (args.quick ? 3 : 7) : Number(args.rounds)
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
  process.stderr.write(`--rounds must be an integer from 1 to 100\n${USAGE}\n`)
  process.exit(2)
}
const duration = args.duration === undefined ? undefined : Number(args.duration)
if (duration !== undefined && (!Number.isInteger(duration) || duration < 2 || duration > 3600)) {
  process.stderr.write(`--duration must be an integer from 2 to 3600 (seconds)\n${USAGE}\n`)
  process.exit(2)
}
const selected = only.length > 0 ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS
const outDir = args.out ?? join(BENCH_DIR, 'results')

const t0 = Date.now()
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s`
const log = (m) => process.stderr.write(`[bench ${elapsed()}] ${m}\n`)

if (!isRecyclingSupported()) {
  log(`recycling is not supported in this process (${recyclingSupport().reason}): every "recycled" figure would be plain sockets; stopping`)
  process.exit(1)
}

const machine = machineInfo()
log(`machine: ${machineLine(machine)}`)
log(`scenarios: ${selected.map((s) => s.name).join(', ')}; ${rounds} rounds${args.quick ? ' (quick)' : ''}`)

const results = []
let failures = 0
for (const scenario of selected) {
  const started = Date.now()
  log(`== ${scenario.name}: ${scenario.title}`)
  let result
  try {
    result = { status: 'ok', ...(await scenario.run({ quick: args.quick, rounds, duration, log })) }
  } catch (err) {
    if (err.skip) {
      result = { status: 'skipped', reason: err.message }
      log(`${scenario.name}: skipped: ${err.message}`)
    } else {
      failures++
      result = { status: 'error', reason: err.message, stack: err.stack }
      log(`${scenario.name}: FAILED: ${err.stack}`)
    }
  } finally {
    cleanupAll() // whatever the scenario left registered: servers, namespaces, temp dirs
  }
  results.push({ name: scenario.name, title: scenario.title, seconds: Math.round((Date.now() - started) / 1000), ...result })
  log(`${scenario.name}: ${result.status} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}

machine.loadAverageAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)))
const report = {
  date: new Date().toISOString(),
  quick: args.quick,
  only: only.length > 0 ? only : null,
  rounds,
  durationSeconds: Math.round((Date.now() - t0) / 1000),
  machine,
  source: sourceInfo(join(BENCH_DIR, '..')),
  scenarios: results,
}

mkdirSync(outDir, { recursive: true })
const stamp = report.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z')
const md = markdown(report)
writeFileSync(join(outDir, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`)
writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`)
writeFileSync(join(outDir, 'latest.md'), md)
writeFileSync(join(outDir, 'latest.svg'), chart(report))
process.stdout.write(`\n${md}\n`)
log(`wrote ${join(outDir, `${stamp}.json`)}, latest.md, latest.svg in ${report.durationSeconds} s`)
process.exit(failures > 0 ? 1 : 0)
