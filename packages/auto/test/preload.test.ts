// An unchanged app (test/fixtures/app.mjs, app.cjs) run by a plain `node`, with and without the
// preload: same responses, and with it every client's connections on recycled fds.
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { timeWaitCount, hasSs, isLinux } from '../../../test/helpers/system.js'
import { isRecyclingSupported } from '@fdrecycle/core'
import { buildAuto, checkRecycled, delta, parseReport, runNode, targets, type ClientReport } from './helpers.js'

const ROUNDS = 12
const CLIENTS = ['pg', 'ioredis', 'http', 'fetch', 'undici'] as const

describe.runIf(isLinux && isRecyclingSupported())('node --import / -r @fdrecycle/auto', () => {
  let env: Record<string, string>
  let plain: Record<string, ClientReport>

  beforeAll(async () => {
    buildAuto()
    env = { AUTO_TARGETS: JSON.stringify(targets()), AUTO_APP_ROUNDS: String(ROUNDS) }
    const r = await runNode(['app.mjs'], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    plain = parseReport(r.stdout).clients
    for (const name of CLIENTS) expect(plain[name]!.before).toBeNull()
    if (hasSs()) console.log(`plain run: pg client TIME_WAIT ${timeWaitCount(inject('pg').plain.port, 'client', plain.pg!.localPorts)} of ${ROUNDS} connections`)
  }, 240_000)

  for (const [app, flag] of [['app.mjs', '--import'], ['app.mjs', '-r'], ['app.cjs', '--import'], ['app.cjs', '-r']] as const) {
    it(`${app} with ${flag} @fdrecycle/auto: same responses, every client's sockets recycled, no pg TIME_WAIT, exits by itself`, async () => {
      const r = await runNode([flag, '@fdrecycle/auto', app], env)
      checkRecycled(`${app} ${flag}`, r, plain, CLIENTS, ROUNDS, inject('pg').plain.port)
    }, 120_000)
  }

  it('NODE_OPTIONS="--import @fdrecycle/auto" reaches an app started without flags', async () => {
    const r = await runNode(['app.cjs'], { ...env, NODE_OPTIONS: '--import @fdrecycle/auto', AUTO_APP_CLIENTS: 'pg,http' })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const { clients } = parseReport(r.stdout)
    expect(delta(clients.pg!, 'reusedConnections')).toBeGreaterThan(0)
    expect(delta(clients.http!, 'reusedConnections')).toBeGreaterThan(0)
  }, 120_000)
})
