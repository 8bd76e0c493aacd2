// The lowest versions of the tested ranges (pg 8.9.0, ioredis 5.0.0, undici 6.0.0), installed from
// the registry into a throwaway app outside the workspace, with the app of preload.test.ts: the
// preload, given by path, must recycle them as it does the newest (which the other tests use).
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { repoRoot } from '../../../test/helpers/built.js'
import { isLinux } from '../../../test/helpers/system.js'
import { buildAuto, checkRecycled, fixtures, parseReport, runNode, targets, type ClientReport } from './helpers.js'

const LOWEST = { pg: '8.9.0', ioredis: '5.0.0', undici: '6.0.0' }
const CLIENTS = ['pg', 'ioredis', 'http', 'fetch', 'undici'] as const
const ROUNDS = 8

describe.runIf(isLinux && isRecyclingSupported())('the lowest tested versions of pg, ioredis and undici', () => {
  let dir = ''
  let env: Record<string, string>
  let plain: Record<string, ClientReport>

  beforeAll(async () => {
    buildAuto()
    dir = mkdtempSync(join(tmpdir(), 'fdrecycle-auto-lowest-'))
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'auto-lowest', private: true, dependencies: LOWEST }))
    for (const file of ['app.mjs', 'app.cjs', 'app-body.mjs']) copyFileSync(join(fixtures, file), join(dir, file))
    await new Promise<void>((resolve, reject) => {
      execFile('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], { cwd: dir }, (err, _out, stderr) =>
        err ? reject(new Error(`npm install ${JSON.stringify(LOWEST)}: ${stderr}`)) : resolve())
    })
    for (const [name, version] of Object.entries(LOWEST)) {
      expect(JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version).toBe(version)
    }
    env = { AUTO_TARGETS: JSON.stringify(targets()), AUTO_APP_ROUNDS: String(ROUNDS) }
    const r = await runNode([join(dir, 'app.mjs')], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    plain = parseReport(r.stdout).clients
  }, 300_000)

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const preload = {
    '--import': join(repoRoot, 'packages', 'auto', 'dist', 'esm', 'index.js'),
    '-r': join(repoRoot, 'packages', 'auto', 'dist', 'cjs', 'index.js'),
  }
  for (const app of ['app.mjs', 'app.cjs']) {
    for (const flag of ['--import', '-r'] as const) {
      it(`${app} with ${flag}: same responses, every client recycled`, async () => {
        const r = await runNode([flag, preload[flag], join(dir, app)], env)
        checkRecycled(`lowest ${app} ${flag}`, r, plain, CLIENTS, ROUNDS, inject('pg').plain.port)
      }, 120_000)
    }
  }
})
