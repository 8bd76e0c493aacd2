// FDRECYCLE_OPTIONS / FDRECYCLE_CLIENTS / FDRECYCLE_DISABLE, as a child process sees them: bad
// values stop the process before the app runs, with one line naming the variable and the option.
import { beforeAll, describe, expect, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { isLinux } from '../../../test/helpers/system.js'
import { buildAuto, runNode } from './helpers.js'

const probe = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!)

describe.runIf(isLinux && isRecyclingSupported())('configuration without code', () => {
  beforeAll(() => buildAuto(), 240_000)

  for (const flag of ['--import', '-r']) {
    it(`${flag}: every integration by default, with Node's global agent options kept`, async () => {
      const plain = probe((await runNode(['probe.cjs'])).stdout)
      const r = await runNode([flag, '@fdrecycle/auto', 'probe.cjs'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      const p = probe(r.stdout)
      expect(p).toMatchObject({
        installed: ['pg', 'ioredis', 'redis', 'http', 'fetch'],
        pgStream: 'RecycledSocket',
        ioredisConnector: 'Connector',
        httpAgent: 'RecycledAgent',
        httpsAgent: 'RecycledHttpsAgent',
      })
      expect(plain).toMatchObject({ installed: null, pgStream: 'Socket', ioredisConnector: 'StandaloneConnector', httpAgent: 'Agent', recyclerOptions: null })
      // keepAlive, scheduling, timeout... as Node's own global agent
      expect(p.httpAgentOptions).toEqual(plain.httpAgentOptions)
      expect(p.httpAgentOptions.keepAlive).toBe(true)
    }, 60_000)
  }

  it('FDRECYCLE_OPTIONS reaches the default recycler; FDRECYCLE_CLIENTS selects the integrations', async () => {
    const r = await runNode(['--import', '@fdrecycle/auto', 'probe.cjs'], {
      FDRECYCLE_OPTIONS: '{"finDelayMs":300,"maxIdle":7}',
      FDRECYCLE_CLIENTS: ' http, ioredis ',
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const p = probe(r.stdout)
    expect(p.installed).toEqual(['ioredis', 'http'])
    expect(p.recyclerOptions).toMatchObject({ finDelayMs: 300, maxIdle: 7, releasePolicy: 'fixed' })
    expect(p).toMatchObject({ pgStream: 'Socket', ioredisConnector: 'Connector', httpAgent: 'RecycledAgent' })
  }, 60_000)

  it('FDRECYCLE_DISABLE=1: nothing patched, nothing created, the other variables not even read', async () => {
    const r = await runNode(['--import', '@fdrecycle/auto', 'probe.cjs'], { FDRECYCLE_DISABLE: '1', FDRECYCLE_OPTIONS: '{"nope":1}' })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(probe(r.stdout)).toMatchObject({
      ran: true, installed: [], pgStream: 'Socket', ioredisConnector: 'StandaloneConnector', httpAgent: 'Agent', httpsAgent: 'Agent', recyclerOptions: null,
    })
  }, 60_000)

  const bad: [string, Record<string, string>, RegExp][] = [
    ['an invalid option value', { FDRECYCLE_OPTIONS: '{"finDelayMs":-5}' }, /^@fdrecycle\/auto: FDRECYCLE_OPTIONS: Invalid option finDelayMs: .+/],
    ['an unknown option', { FDRECYCLE_OPTIONS: '{"finDelay":5}' }, /^@fdrecycle\/auto: FDRECYCLE_OPTIONS: Invalid option finDelay: unknown option/],
    ['options that are not JSON', { FDRECYCLE_OPTIONS: '{finDelayMs:5}' }, /^@fdrecycle\/auto: FDRECYCLE_OPTIONS: not valid JSON/],
    ['options that are not an object', { FDRECYCLE_OPTIONS: '[1]' }, /^@fdrecycle\/auto: FDRECYCLE_OPTIONS: Invalid option options: expected an object/],
    ['an unknown client', { FDRECYCLE_CLIENTS: 'pg,mysql' }, /^@fdrecycle\/auto: FDRECYCLE_CLIENTS: unknown client 'mysql'/],
    ['a bad FDRECYCLE_DISABLE', { FDRECYCLE_DISABLE: 'yes' }, /^@fdrecycle\/auto: FDRECYCLE_DISABLE: expected 1/],
  ]
  for (const [what, env, message] of bad) {
    for (const flag of ['--import', '-r']) {
      it(`${flag}, ${what}: one line on stderr, exit 78, the app never ran`, async () => {
        const r = await runNode([flag, '@fdrecycle/auto', 'probe.cjs'], env)
        expect(r.stdout).toBe('')
        expect(r.code).toBe(78)
        const lines = r.stderr.trim().split('\n')
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(message)
        expect(lines[0]).toMatch(/the app was not started/)
      }, 60_000)
    }
  }
})
