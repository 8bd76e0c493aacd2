import { afterAll, beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest'
import { cleanupFaultLabs, ensureCoreBuilt, FaultLab, faultLabSupport, SERVER_ADDRESS } from './fault-lab.js'
import { requireNamespaces } from '../helpers/namespaces.js'

// Issue #7: a few hundred connection cycles through a relay that delays every segment and drops
// some at random (seeded: the seed is printed; FAULTS_SEED=n replays its loss decisions).

const support = faultLabSupport()
requireNamespaces('random loss on a real path: namespaces + TUN relay', support)

const CYCLES = 300
const CONCURRENCY = 8
const LOSS = 0.03

interface LoadResult {
  cycles: number
  failures: unknown[]
  reused: number
  ms: number
  maxCycleMs: number
}

describe.runIf(support.ok)('random loss on a real path: namespaces + TUN relay', () => {
  beforeAll(ensureCoreBuilt)
  afterAll(cleanupFaultLabs)

  it(`${CYCLES} cycles with ${LOSS * 100}% loss each way: right bytes, client fds back to baseline, no server reset, nothing left open`, async () => {
    const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : Math.floor(Math.random() * 0xffffffff)
    console.log(`[faults] random loss seed ${seed} (FAULTS_SEED=${seed} to replay)`)
    await using lab = await FaultLab.start({ relay: { delayAbMs: 5, delayBaMs: 5, lossAb: LOSS, lossBa: LOSS, seed, trace: true } })
    onTestFailed(async () => {
      console.error(`[faults] failed with seed ${seed}\n${await lab.diagnostics()}`)
    })
    if (process.env.FAULTS_VERBOSE === '1') onTestFinished(async () => console.log(await lab.diagnostics()))
    // finDelayMs 300: the 'wait' cycles (our FIN first) then hold a connection 300 ms, not 1 s
    await lab.init({ finDelayMs: 300, drainTimeoutMs: 3000 })
    const result = await lab.client.call<LoadResult>(
      'load',
      { host: SERVER_ADDRESS, port: lab.serverPort, cycles: CYCLES, concurrency: CONCURRENCY, maxSize: 16_384, seed, cycleTimeoutMs: 20_000 },
      120_000,
    )
    console.log(`[faults] ${CYCLES} cycles in ${result.ms} ms (slowest ${result.maxCycleMs} ms), ${result.reused} on reused fds`)
    expect(result.failures).toEqual([])
    const stats = await lab.waitStats({ active: 0, draining: 0 }, 15_000)
    expect(stats.connections).toBe(CYCLES)
    expect(result.reused).toBeGreaterThan(CYCLES / 2)
    expect(Number(stats.fdsCreated)).toBeLessThan(CYCLES / 4)

    // the server side: every connection ends (bounded wait: retransmissions take a few RTOs)
    const server = await lab.waitServerClosed(5000)
    const relay = await lab.relay.stats() // also flushes the relay's log
    console.log(`[faults] client ${JSON.stringify(stats)}\n[faults] relay ${JSON.stringify(relay)}`)
    // the fault happened, both ways
    expect(relay.drop_loss_ab).toBeGreaterThan(0)
    expect(relay.drop_loss_ba).toBeGreaterThan(0)
    expect(server.accepted).toBe(CYCLES)
    // No server connection is reset or left open: a parked fd whose FIN was lost waits for the
    // retransmission to be acknowledged before it is dissolved (real-path.test.ts).
    for (const c of [...server.errors, ...server.openConns].slice(0, 3)) console.error(`[faults] unexpected:\n${await lab.timeline(c.remotePort)}`)
    expect(server.errors).toEqual([])
    expect(server.openConns).toEqual([])

    // the client side: close() gives back every fd it made
    const closed = await lab.client.call<{ stats: Record<string, number>; fds: number; baselineFds: number }>('close')
    expect(closed.stats.fdsClosed).toBe(closed.stats.fdsCreated)
    expect(closed.fds).toBe(closed.baselineFds)
  })
})
