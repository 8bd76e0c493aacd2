// Unit tests (no network, no child process): the environment's parsing, version ranges, and
// install()'s all-or-nothing order over stand-in integrations.
import { afterAll, describe, expect, it, vi } from 'vitest'
import { InvalidOptionError, defaultRecycler, isRecyclingSupported } from '@fdrecycle/core'
import { AutoConfigError, INTEGRATION_NAMES, readConfig } from '../src/config.js'
import { inRange, packageName } from '../src/hook.js'
import { install } from '../src/install.js'
import type { Integration, IntegrationName } from '../src/integration.js'
import { IOREDIS_RANGE } from '../src/integrations/ioredis.js'
import { PG_RANGE } from '../src/integrations/pg.js'
import { UNDICI_RANGE, isNodesDefault } from '../src/integrations/fetch.js'

function configError(env: NodeJS.ProcessEnv): AutoConfigError {
  try {
    readConfig(env)
  } catch (err) {
    expect(err).toBeInstanceOf(AutoConfigError)
    return err as AutoConfigError
  }
  throw new Error('readConfig did not throw')
}

describe('readConfig()', () => {
  it('defaults: every client, the recycler defaults', () => {
    expect(readConfig({})).toEqual({ disabled: false, clients: new Set(INTEGRATION_NAMES), options: undefined, report: undefined })
    expect(readConfig({ FDRECYCLE_CLIENTS: '  ', FDRECYCLE_OPTIONS: '', FDRECYCLE_DISABLE: '0' }).clients.size).toBe(5)
  })

  it('FDRECYCLE_CLIENTS: a comma list, spaces and empty items ignored', () => {
    expect([...readConfig({ FDRECYCLE_CLIENTS: 'fetch, pg,,http ' }).clients]).toEqual(['fetch', 'pg', 'http'])
    const err = configError({ FDRECYCLE_CLIENTS: 'pg,Redis' })
    expect(err.variable).toBe('FDRECYCLE_CLIENTS')
    expect(err.code).toBe('ERR_FDRECYCLE_INVALID_OPTION')
    expect(err.option).toBe('FDRECYCLE_CLIENTS')
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect(err.message).toBe("FDRECYCLE_CLIENTS: unknown client 'Redis'; expected a comma-separated list of pg, ioredis, redis, http, fetch")
  })

  it("FDRECYCLE_OPTIONS: JSON validated by core's validateOptions, the option named", () => {
    expect(readConfig({ FDRECYCLE_OPTIONS: '{"finDelayMs":250,"maxIdle":4}' }).options).toEqual({ finDelayMs: 250, maxIdle: 4 })
    expect(configError({ FDRECYCLE_OPTIONS: '{"maxIdle":1.5}' }).message).toMatch(/^FDRECYCLE_OPTIONS: Invalid option maxIdle: /)
    expect(configError({ FDRECYCLE_OPTIONS: '{"minIdle":9,"maxIdle":4}' }).message).toMatch(/^FDRECYCLE_OPTIONS: Invalid option minIdle: minIdle \(9\) exceeds maxIdle \(4\)/)
    expect(configError({ FDRECYCLE_OPTIONS: 'finDelayMs=5' }).message).toMatch(/^FDRECYCLE_OPTIONS: not valid JSON \(.+\); expected an object of SocketRecycler options/)
    expect(configError({ FDRECYCLE_OPTIONS: 'null' }).message).toMatch(/^FDRECYCLE_OPTIONS: Invalid option options: expected an object, received/)
  })

  it('FDRECYCLE_DISABLE=1 wins and reads nothing else; other values than 1 / 0 are refused', () => {
    expect(readConfig({ FDRECYCLE_DISABLE: '1', FDRECYCLE_CLIENTS: 'nope', FDRECYCLE_OPTIONS: '{', FDRECYCLE_REPORT: 'x' })).toEqual({ disabled: true, clients: new Set(), options: undefined, report: undefined })
    expect(configError({ FDRECYCLE_DISABLE: 'true' }).message).toBe("FDRECYCLE_DISABLE: expected 1 to disable, or 0 (or unset); received 'true'")
  })

  it('FDRECYCLE_REPORT: stderr, or unset', () => {
    expect(readConfig({ FDRECYCLE_REPORT: 'stderr' }).report).toBe('stderr')
    expect(readConfig({ FDRECYCLE_REPORT: '' }).report).toBeUndefined()
    expect(configError({ FDRECYCLE_REPORT: 'stdout' }).message).toBe("FDRECYCLE_REPORT: expected stderr (or unset); received 'stdout'")
  })
})

describe('tested version ranges', () => {
  it('pg >=8.9.0 <9, ioredis >=5.0.0 <7, undici >=6.0.0 <8', () => {
    expect(['8.9.0', '8.23.1', '8.99.0'].map((v) => inRange(v, PG_RANGE))).toEqual([true, true, true])
    expect(['8.8.9', '7.18.2', '9.0.0', '9.0.0-beta.1', 'x'].map((v) => inRange(v, PG_RANGE))).toEqual([false, false, false, false, false])
    expect(['5.0.0', '6.0.0', '4.28.5', '7.0.0'].map((v) => inRange(v, IOREDIS_RANGE))).toEqual([true, true, false, false])
    expect(['6.0.0', '7.30.2', '5.28.4', '8.0.0'].map((v) => inRange(v, UNDICI_RANGE))).toEqual([true, true, false, false])
    expect(packageName('pg/lib/connection')).toBe('pg')
    expect(packageName('@scope/pkg/lib/x')).toBe('@scope/pkg')
  })
})

describe("Node's own default dispatcher", () => {
  it('is an Agent that no loaded undici package exports; an npm undici Agent and other classes are not', async () => {
    const undici = await import('undici')
    class Agent {}
    expect(isNodesDefault(new Agent())).toBe(true)
    expect(isNodesDefault(new undici.Agent())).toBe(false)
    expect(isNodesDefault(new undici.ProxyAgent('http://127.0.0.1:1'))).toBe(false)
    expect(isNodesDefault(undefined)).toBe(false)
  })
})

describe.runIf(isRecyclingSupported())('install()', () => {
  afterAll(async () => {
    await defaultRecycler().close()
  })

  const fake = (name: IntegrationName, log: string[], fail = false): Integration => ({
    name,
    install(context) {
      if (fail) throw new Error(`${name} failed`)
      expect(context.recycler).toBe(defaultRecycler())
      log.push(`install ${name}`)
      return () => log.push(`undo ${name}`)
    },
  })

  it('installs the selected integrations in order and undoes them in reverse', () => {
    const log: string[] = []
    const result = install({ env: { FDRECYCLE_CLIENTS: 'http,pg' }, integrations: ['pg', 'ioredis', 'http'].map((n) => fake(n as IntegrationName, log)) })
    expect(result.installed).toEqual(['pg', 'http'])
    result.uninstall()
    result.uninstall()
    expect(log).toEqual(['install pg', 'install http', 'undo http', 'undo pg'])
  })

  it('an integration that throws: those before it are undone, the error goes on (never half-installed)', () => {
    const log: string[] = []
    expect(() => install({ env: {}, integrations: [fake('pg', log), fake('ioredis', log), fake('http', log, true)] })).toThrow('http failed')
    expect(log).toEqual(['install pg', 'install ioredis', 'undo ioredis', 'undo pg'])
  })

  it('disabled or nothing selected: nothing installed, and said why', () => {
    const log: string[] = []
    expect(install({ env: { FDRECYCLE_DISABLE: '1' }, integrations: [fake('pg', log)] })).toMatchObject({ installed: [], reason: 'disabled' })
    expect(install({ env: { FDRECYCLE_CLIENTS: 'redis' }, integrations: [fake('pg', log)] })).toMatchObject({ installed: [], reason: 'no clients' })
    expect(log).toEqual([])
  })

  it('skip(): one FDRECYCLE_AUTO_SKIPPED warning per distinct reason', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const skipping: Integration = {
        name: 'ioredis',
        install({ skip }) {
          skip('reason a')
          skip('reason a')
          skip('reason b')
          return () => {}
        },
      }
      install({ env: {}, integrations: [skipping] })
      expect(warn.mock.calls).toEqual([
        ['@fdrecycle/auto (ioredis): reason a', { code: 'FDRECYCLE_AUTO_SKIPPED' }],
        ['@fdrecycle/auto (ioredis): reason b', { code: 'FDRECYCLE_AUTO_SKIPPED' }],
      ])
    } finally {
      warn.mockRestore()
    }
  })
})
