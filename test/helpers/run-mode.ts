// npm test runs each adapter's suites twice: as they are, and with FDRECYCLE_DISABLE=1 (plain
// sockets). The tests branch on `recyclingSupported`; this suite makes sure that the first run does
// recycle, so that a failing support probe cannot send it down the passthrough branches unseen.
import { describe, expect, it } from 'vitest'
import { SocketRecycler, UnsupportedError, isRecyclingSupported, recyclingSupport, type RecyclerStats } from '@fdrecycle/core'

/**
 * Whether this run recycles. `npm test` runs the adapters' suites twice: as they are, and with
 * FDRECYCLE_DISABLE=1, where every recycler of mode 'auto' hands out plain sockets (mode
 * 'passthrough'; the redis connector then says no QUIT goodbye). Facts about recycling itself
 * (reuse, inodes, TIME_WAIT avoided, drained bytes, the release protocol's counters) are asserted
 * only when this is true; runModeSuite() checks that it is true unless FDRECYCLE_DISABLE=1 forced
 * it off, so no failing probe takes the passthrough branches unseen.
 */
export const recyclingSupported = isRecyclingSupported()

/** What a passthrough recycler reports after `connections` plain connections, `open` of them still open. */
export function passthroughStats(connections: number, open = 0): Partial<RecyclerStats> {
  return {
    mode: 'passthrough', connections, fdsCreated: connections, fdsClosed: connections - open, active: open,
    reusedConnections: 0, recycled: 0, resetsSent: 0, drainTimeouts: 0, peerClosedFirst: 0, finSentFirst: 0,
    discardedBytes: 0, drainsShed: 0, finDelaysShed: 0, idle: 0, cooling: 0, draining: 0,
  }
}

/**
 * A recycler's counters after `expected.connections` connections. Recycling: `expected` (what the
 * release protocol did). Passthrough: the plain-socket facts instead, one fd per connection,
 * closed with it (`expected.active` still open), nothing reused, pooled or drained.
 */
export function expectRecycled(stats: RecyclerStats, expected: Partial<RecyclerStats> & { connections: number }): void {
  if (recyclingSupported) expect(stats).toMatchObject({ mode: 'recycling', ...expected })
  else expect(stats).toMatchObject(passthroughStats(expected.connections, expected.active ?? 0))
}

/** The run-mode check, for an adapter whose tests branch on `recyclingSupported`. */
export function runModeSuite(): void {
  describe('the run mode', () => {
    it('recycles, unless FDRECYCLE_DISABLE=1 switched recycling off (then plain sockets, and mode recycle throws)', async () => {
      const recycler = new SocketRecycler()
      try {
        if (process.env.FDRECYCLE_DISABLE === '1') {
          expect(recyclingSupport()).toMatchObject({ supported: false, reason: expect.stringMatching(/FDRECYCLE_DISABLE/) })
          expect(() => new SocketRecycler({ mode: 'recycle' })).toThrow(UnsupportedError)
          expect(recycler.stats().mode).toBe('passthrough')
        } else {
          expect(recyclingSupport()).toEqual({ supported: true })
          expect(recycler.stats().mode).toBe('recycling')
        }
        expect(recyclingSupported).toBe(recyclingSupport().supported)
      } finally {
        await recycler.close()
      }
    })
  })
}
