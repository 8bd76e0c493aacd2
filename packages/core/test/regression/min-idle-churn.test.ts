import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { isLinux } from '../../../../test/helpers/system.js'
import { exchange, settle } from '../helpers.js'
import { greetAndClose, tcpServer } from '../../../../test/helpers/servers.js'

// What broke: generic-pool's idleTimeoutMillis evicts regardless of `min`, so with minIdle: 8 and
// idleTimeoutMs: 200 the warm floor was closed and made again on every eviction run (70 fds
// created and 54 closed in 1.2 s). Idle fds beyond minIdle still age out.
const MIN_IDLE = 8
const IDLE_TIMEOUT_MS = 200
/** Six idle timeouts: several eviction runs (one every idleTimeoutMs) must pass without churn. */
const OBSERVE_MS = 6 * IDLE_TIMEOUT_MS

describe.runIf(isLinux)('regression: the minIdle floor does not churn', () => {
  it('keeps its minIdle fds across idle timeouts, without closing and recreating them', async () => {
    const recycler = new SocketRecycler({ minIdle: MIN_IDLE, idleTimeoutMs: IDLE_TIMEOUT_MS })
    try {
      // generic-pool makes the floor for each family at construction
      const created = recycler.stats().fdsCreated
      expect(created).toBe(2 * MIN_IDLE)
      await new Promise((resolve) => setTimeout(resolve, OBSERVE_MS))
      const s = recycler.stats()
      expect(s.fdsCreated - created).toBe(0)
      expect(s.fdsClosed).toBe(0)
      expect(s.idle).toBe(2 * MIN_IDLE)
    } finally {
      await recycler.close()
    }
  })

  it('after use, idle fds above the floor age out and the floor stays', async () => {
    await using srv = await tcpServer(greetAndClose)
    const recycler = new SocketRecycler({ minIdle: MIN_IDLE, idleTimeoutMs: IDLE_TIMEOUT_MS })
    try {
      // 2 x MIN_IDLE connections at once: more IPv4 fds than the floor are in use, then idle
      const runs = Array.from({ length: 2 * MIN_IDLE }, () => exchange(recycler.createConnection(srv.port, '127.0.0.1')))
      for (const r of await Promise.all(runs)) expect(r.data).toMatch(/^hello /)
      await settle()
      const afterUse = recycler.stats()
      expect(afterUse.idle).toBeGreaterThan(2 * MIN_IDLE)
      await new Promise((resolve) => setTimeout(resolve, OBSERVE_MS))
      const s = recycler.stats()
      // the surplus went; the floor of each family remains, and nothing was made to refill it
      expect(s.idle).toBe(2 * MIN_IDLE)
      expect(s.fdsCreated).toBe(afterUse.fdsCreated)
      expect(s.fdsCreated - s.fdsClosed).toBe(2 * MIN_IDLE)
    } finally {
      await recycler.close()
    }
  })
})
