import { describe, expect, it } from 'vitest'
import { FdPool, type Validity } from '../../src/fd-pool.js'
import { validateOptions } from '../../src/options.js'
import type { PooledFd } from '../../src/pooled-fd.js'

// What broke: with maxSockets reached, an fd released in LAST_ACK (validation says 'later') sat in
// the lingering list, which only acquireNow() and the idle sweep look at; a connect already
// waiting in generic-pool never got it and failed with ERR_FDRECYCLE_ACQUIRE_TIMEOUT although the
// fd was ready a few milliseconds later. Waiters now have lingering fds polled for them.
describe('regression: a lingering fd goes to a connect waiting for one', () => {
  it('the waiter gets the fd once its last ACK is in, long before acquireTimeoutMillis', async () => {
    let ready = true
    const destroyed: number[] = []
    let created = 0
    const pool = new FdPool(validateOptions({ maxSockets: 1, acquireTimeoutMillis: 5000 }), {
      create: (family) => ({ id: ++created, family, state: 'fresh' }) as unknown as PooledFd,
      destroy: (p) => void destroyed.push(p.id),
      validate: (): Validity => (ready ? 'ok' : 'later'),
    })
    const first = await pool.acquire(4)
    ready = false // released parked, in LAST_ACK
    pool.release(first)
    // past the quarantine: the fd is lendable, but 'later' (LAST_ACK) until `ready`
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    const waiting = pool.acquire(4)
    let got: PooledFd | undefined
    void waiting.then((p) => (got = p))
    // several polls (every 10 ms) find it still in LAST_ACK: it is not lent
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(got).toBeUndefined()
    ready = true // the last ACK came
    // (without the fix this rejects with ERR_FDRECYCLE_ACQUIRE_TIMEOUT after acquireTimeoutMillis)
    const second = await waiting
    expect(second).toBe(first)
    expect(created).toBe(1)
    expect(destroyed).toEqual([])
    pool.destroy(second)
    await pool.close()
  })

  it('abortWaiters() turns a waiting connect away at once, and the fd is not lent later', async () => {
    let created = 0
    const destroyed: number[] = []
    const pool = new FdPool(validateOptions({ maxSockets: 1, acquireTimeoutMillis: 5000 }), {
      create: (family) => ({ id: ++created, family, state: 'fresh' }) as unknown as PooledFd,
      destroy: (p) => void destroyed.push(p.id),
      validate: (): Validity => 'ok',
    })
    const held = await pool.acquire(4)
    const waiting = pool.acquire(4)
    pool.abortWaiters(new Error('closing'))
    await expect(waiting).rejects.toThrow('closing')
    pool.release(held)
    await pool.close()
    // every fd made was closed (close() may have had one made for the turned-away request that
    // generic-pool still held; it was closed, not lent)
    expect(created).toBeGreaterThanOrEqual(1)
    expect([...destroyed].sort()).toEqual(Array.from({ length: created }, (_, i) => i + 1))
  })
})
