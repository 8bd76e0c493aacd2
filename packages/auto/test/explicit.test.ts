// What the app set explicitly (pg `stream`, ioredis `Connector`, a request's `agent`, a global
// dispatcher set after the preload, a request's `dispatcher`) is its own: none of those
// connections goes through the recycler. And knex's pg pool, configured knex's way, is recycled.
import { beforeAll, describe, expect, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { isLinux } from '../../../test/helpers/system.js'
import { buildAuto, runNode, targets } from './helpers.js'

describe.runIf(isLinux && isRecyclingSupported())('what the app sets itself', () => {
  let env: Record<string, string>
  beforeAll(() => {
    buildAuto()
    env = { AUTO_TARGETS: JSON.stringify(targets()) }
  }, 240_000)

  it('an explicit stream, Connector, agent and dispatcher are left alone', async () => {
    const r = await runNode(['--import', '@fdrecycle/auto', 'explicit.mjs'], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const { seen, before, after } = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(seen.pg).toEqual({ stream: 'Socket', rows: [{ one: 1 }] })
    expect(seen.ioredis).toEqual({ connector: 'MyConnector', pong: 'PONG' })
    expect(seen.http).toEqual({ agent: 'Agent', status: 200 })
    expect(seen.fetch).toEqual({ status: 200, global: true })
    expect(seen.fetchOwn).toEqual({ status: 200 })
    // the preload ran (the default recycler exists) and lent none of these connections a socket
    expect(before.mode).toBe('recycling')
    expect(after.connections).toBe(before.connections)
  }, 120_000)

  it("knex with its pg client: the connections of its pool are recycled", async () => {
    const rounds = 8
    const plain = await runNode(['knex.cjs'], { ...env, AUTO_APP_ROUNDS: String(rounds) })
    expect(plain.stderr).toBe('')
    expect(plain.code).toBe(0)
    const r = await runNode(['-r', '@fdrecycle/auto', 'knex.cjs'], { ...env, AUTO_APP_ROUNDS: String(rounds) })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const base = JSON.parse(plain.stdout.trim().split('\n').pop()!)
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(base.streams).toEqual(Array(rounds).fill('Socket'))
    expect(out.streams).toEqual(Array(rounds).fill('RecycledSocket'))
    expect(out.results).toEqual(base.results)
    const connections = out.after.connections - out.before.connections
    const reused = out.after.reusedConnections - out.before.reusedConnections
    const created = out.after.fdsCreated - out.before.fdsCreated
    console.log(`knex: ${connections} connections, ${reused} reused, ${created} fds created`)
    expect(connections).toBe(rounds)
    expect(reused).toBeGreaterThan(0)
    expect(created).toBeLessThan(rounds)
  }, 120_000)
})
