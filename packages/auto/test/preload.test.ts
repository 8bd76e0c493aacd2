// An unchanged app (test/fixtures/app.mjs, app.cjs) run by a plain `node`, with and without the
// preload: same responses, and with it every client's connections on recycled fds.
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { timeWaitCount, hasSs, isLinux } from '../../../test/helpers/system.js'
import { isRecyclingSupported } from '@fdrecycle/core'
import { buildAuto, delta, parseReport, runNode, targets, type ClientReport } from './helpers.js'

const ROUNDS = 12
const CLIENTS = ['pg', 'ioredis', 'http', 'fetch'] as const

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
      expect(r.stderr).toBe('')
      expect(r.signal).toBeNull()
      expect(r.code).toBe(0)
      const { clients } = parseReport(r.stdout)
      for (const name of CLIENTS) {
        const c = clients[name]!
        expect(c.results, name).toEqual(plain[name]!.results)
        expect(c.after?.mode, name).toBe('recycling')
        // every round is a new connection (maxUses 1, QUIT, `Connection: close`): all of them recycled sockets
        expect(delta(c, 'connections'), name).toBe(ROUNDS)
        expect(delta(c, 'reusedConnections'), name).toBeGreaterThan(0)
        expect(delta(c, 'fdsCreated'), name).toBeLessThan(ROUNDS)
      }
      console.log(`${app} ${flag}: ${CLIENTS.map((n) => `${n} ${delta(clients[n]!, 'connections')} connections, ${delta(clients[n]!, 'reusedConnections')} reused, ${delta(clients[n]!, 'fdsCreated')} fds created`).join('; ')}`)
      // pg's Terminate: the server closes first, no TIME_WAIT on this side of any of its connections
      expect(clients.pg!.localPorts).toHaveLength(ROUNDS)
      if (hasSs()) expect(timeWaitCount(inject('pg').plain.port, 'client', clients.pg!.localPorts)).toBe(0)
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
