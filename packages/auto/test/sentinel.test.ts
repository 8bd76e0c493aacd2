// ioredis with `sentinels` keeps its SentinelConnector and is left plain (src/integrations/ioredis.ts
// says why), while a plain Redis client in the same process is recycled. Against a real
// redis-server --sentinel.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { REDIS_HOST, nodeArgs, startNode, stopNode, type RedisNode } from '../../../test/helpers/redis.js'
import { isLinux } from '../../../test/helpers/system.js'
import { freePort } from '../../../test/setup/postgres.js'
import { buildAuto, runNode } from './helpers.js'

const NAME = 'automaster'

describe.runIf(isLinux && isRecyclingSupported())('ioredis with sentinels', () => {
  let dir: string
  let master: RedisNode
  let sentinel: RedisNode
  let env: Record<string, string>

  beforeAll(async () => {
    buildAuto()
    dir = mkdtempSync(join(tmpdir(), 'fdrecycle-auto-sentinel-'))
    master = nodeArgs(await freePort(false), join(dir, 'master'))
    const sentinelPort = await freePort(false)
    const sentinelDir = join(dir, 'sentinel')
    for (const d of [master.dir, sentinelDir]) mkdirp(d)
    startNode(master)
    // Sentinel rewrites its config file: a throwaway one, in the throwaway dir.
    const conf = join(sentinelDir, 'sentinel.conf')
    writeFileSync(conf, [
      `port ${sentinelPort}`, `bind ${REDIS_HOST}`, `dir ${sentinelDir}`, 'daemonize yes',
      `pidfile ${join(sentinelDir, 'redis.pid')}`, `logfile ${join(sentinelDir, 'redis.log')}`,
      `sentinel monitor ${NAME} ${REDIS_HOST} ${master.port} 1`, '',
    ].join('\n'))
    sentinel = { port: sentinelPort, dir: sentinelDir, pidFile: join(sentinelDir, 'redis.pid'), logFile: join(sentinelDir, 'redis.log'), args: [conf, '--sentinel'] }
    startNode(sentinel)
    env = {
      AUTO_SENTINEL: JSON.stringify({ sentinel: { host: REDIS_HOST, port: sentinelPort }, name: NAME, master: { host: REDIS_HOST, port: master.port } }),
      AUTO_APP_ROUNDS: '6',
    }
  }, 240_000)

  afterAll(() => {
    if (sentinel) stopNode(sentinel)
    if (master) stopNode(master)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('keeps its SentinelConnector, answers as without the preload, and no connection of it is recycled', async () => {
    const plain = await runNode(['sentinel.cjs'], env)
    expect(plain.stderr).toBe('')
    expect(plain.code).toBe(0)
    const r = await runNode(['-r', '@fdrecycle/auto', 'sentinel.cjs'], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const base = JSON.parse(plain.stdout.trim().split('\n').pop()!)
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(base.results).toEqual(['v0', 1, 'v1', 1, 'v2', 1, 'v3', 1, 'v4', 1, 'v5', 1])
    expect(out.results).toEqual(base.results)
    expect(out.seen).toEqual(['SentinelConnector', 'stream:Socket'])
    expect(base.seen).toEqual(out.seen)
    // neither the master connection nor the clients that asked the sentinel
    expect(out.after.connections).toBe(out.before.connections)
    // the preload is active in that process: the master reached without sentinels is recycled
    expect(out.direct).toEqual({ connector: 'Connector', pong: 'PONG' })
    expect(out.after.mode).toBe('recycling')
    expect(out.afterDirect.connections - out.after.connections).toBe(1)
  }, 120_000)
})

function mkdirp(d: string): void {
  rmSync(d, { recursive: true, force: true })
  mkdirSync(d, { recursive: true })
}
