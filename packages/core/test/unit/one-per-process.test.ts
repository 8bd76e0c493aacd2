import { describe, expect, it } from 'vitest'
import { defaultRecycler, FdRecycleError, RecyclerClosedError, isFdRecycleError, ErrorCodes } from '../../src/index.js'

// Another copy of the package (its CJS build beside the ESM one, or a second install) has its own
// module state: what must be one per process lives under Symbol.for keys.

describe('one per process, across copies of the package', () => {
  it('defaultRecycler() is the one under globalThis[Symbol.for("fdrecycle.defaultRecycler")]', async () => {
    const key = Symbol.for('fdrecycle.defaultRecycler')
    const g = globalThis as unknown as Record<symbol, unknown>
    const before = g[key]
    try {
      const first = defaultRecycler()
      expect(g[key]).toBe(first)
      expect(defaultRecycler()).toBe(first)
      // what another copy would find, and what it would leave for this one
      const fromOtherCopy = { closed: false }
      g[key] = fromOtherCopy
      expect(defaultRecycler()).toBe(fromOtherCopy)
      g[key] = first
      await first.close()
      const next = defaultRecycler() // a closed default is replaced
      expect(next).not.toBe(first)
      expect(g[key]).toBe(next)
      await next.close()
    } finally {
      g[key] = before
    }
  })

  it('errors of another copy pass instanceof and isFdRecycleError (the brand is a Symbol.for)', () => {
    const foreign = Object.assign(new Error('closed'), { code: ErrorCodes.CLOSED })
    Object.defineProperty(foreign, Symbol.for('fdrecycle.error'), { value: true })
    expect(foreign instanceof FdRecycleError).toBe(true)
    expect(foreign instanceof RecyclerClosedError).toBe(true)
    expect(isFdRecycleError(foreign)).toBe(true)
    expect(new Error('plain') instanceof FdRecycleError).toBe(false)
  })
})
