// The https global agent and ioredis Cluster, each against servers of their own kind: same
// answers as without the preload, connections on recycled sockets.
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { isRecyclingSupported } from '@fdrecycle/core'
import { selfSignedCert } from '../../../test/helpers/certs.js'
import { isLinux } from '../../../test/helpers/system.js'
import { buildAuto, runNode } from './helpers.js'

const last = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!)

describe.runIf(isLinux && isRecyclingSupported())('https and ioredis Cluster', () => {
  beforeAll(() => buildAuto(), 240_000)

  it('https.get without an agent of its own: RecycledHttpsAgent, same bodies, connections recycled', async () => {
    const { key, cert } = selfSignedCert()
    const env = { AUTO_TLS: JSON.stringify({ key: key.toString(), cert: cert.toString() }), AUTO_APP_ROUNDS: '6' }
    const plain = await runNode(['https.mjs'], env)
    expect(plain.stderr).toBe('')
    const r = await runNode(['--import', '@fdrecycle/auto', 'https.mjs'], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const base = last(plain.stdout)
    const out = last(r.stdout)
    expect(base.agent).toBe('Agent')
    expect(out.agent).toBe('RecycledHttpsAgent')
    expect(out.bodies).toEqual(['/r0', '/r1', '/r2', '/r3', '/r4', '/r5'].map((p) => `tls ${p}`))
    expect(out.bodies).toEqual(base.bodies)
    expect(out.after.connections - out.before.connections).toBe(6)
    expect(out.after.reusedConnections - out.before.reusedConnections).toBeGreaterThan(0)
  }, 120_000)

  it('ioredis Cluster: its node connections recycled, same answers', async () => {
    const redis = inject('redis')
    const env = { AUTO_CLUSTER: JSON.stringify({ nodes: redis.cluster.slice(0, 3).map((n) => ({ host: redis.host, port: n.port })) }), AUTO_APP_ROUNDS: '3' }
    const plain = await runNode(['cluster.cjs'], env)
    expect(plain.stderr).toBe('')
    expect(plain.code).toBe(0)
    const r = await runNode(['-r', '@fdrecycle/auto', 'cluster.cjs'], env)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const base = last(plain.stdout)
    const out = last(r.stdout)
    expect(base.results).toHaveLength(3 * 8 * 2)
    expect(out.results).toEqual(base.results)
    const connections = out.after.connections - out.before.connections
    const reused = out.after.reusedConnections - out.before.reusedConnections
    console.log(`cluster: ${connections} connections, ${reused} reused, ${out.after.fdsCreated - out.before.fdsCreated} fds created`)
    // each round connects to at least the three masters
    expect(connections).toBeGreaterThanOrEqual(3 * 3)
    expect(reused).toBeGreaterThan(0)
  }, 120_000)
})
