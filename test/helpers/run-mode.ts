// npm test runs each adapter's suites twice: as they are, and with FDRECYCLE_DISABLE=1 (plain
// sockets). The tests branch on `recyclingSupported`; this suite makes sure that the first run does
// recycle, so that a failing support probe cannot send it down the passthrough branches unseen.
import { describe, expect, it } from 'vitest'
import { SocketRecycler, UnsupportedError, recyclingSupport } from '@fdrecycle/core'

/** The run-mode check, for an adapter whose tests branch on `recyclingSupported`. */
export function runModeSuite(recyclingSupported: boolean): void {
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
