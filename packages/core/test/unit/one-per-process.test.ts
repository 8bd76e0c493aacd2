import { describe, expect, it } from 'vitest'
import {
  configureDefaultRecycler, defaultRecycler, DEFAULT_OPTIONS, FdRecycleError, InvalidArgumentError, InvalidOptionError, RecyclerClosedError,
  isFdRecycleError, ErrorCodes,
} from '../../src/index.js'

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

describe('configureDefaultRecycler()', () => {
  const key = Symbol.for('fdrecycle.defaultRecycler')
  const optionsKey = Symbol.for('fdrecycle.defaultRecyclerOptions')
  const g = globalThis as unknown as Record<symbol, unknown>

  async function isolated(body: () => Promise<void>): Promise<void> {
    const before = g[key]
    const beforeOptions = g[optionsKey]
    g[key] = undefined
    g[optionsKey] = undefined
    try {
      await body()
    } finally {
      const made = g[key] as { close(): Promise<void> } | undefined
      await made?.close()
      g[key] = before
      g[optionsKey] = beforeOptions
    }
  }

  it('gives the default recycler its options, also the one that replaces a closed default', async () => {
    await isolated(async () => {
      configureDefaultRecycler({ finDelayMs: 250, maxIdle: 8 })
      const first = defaultRecycler()
      expect(first.options.finDelayMs).toBe(250)
      expect(first.options.maxIdle).toBe(8)
      expect(first.options.releasePolicy).toBe('fixed')
      await first.close()
      const next = defaultRecycler()
      expect(next).not.toBe(first)
      expect(next.options.finDelayMs).toBe(250)
    })
  })

  it('rejects an invalid option, naming it, and leaves the defaults as they were', async () => {
    await isolated(async () => {
      expect(() => configureDefaultRecycler({ finDelayMs: -1 })).toThrow(InvalidOptionError)
      expect(() => configureDefaultRecycler({ nope: 1 } as never)).toThrow(/nope/)
      expect(defaultRecycler().options.finDelayMs).toBe(DEFAULT_OPTIONS.finDelayMs)
    })
  })

  it('refuses once an open default recycler exists (its options can no longer change)', async () => {
    await isolated(async () => {
      const made = defaultRecycler()
      let caught: unknown
      try {
        configureDefaultRecycler({ finDelayMs: 10 })
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as FdRecycleError).code).toBe(ErrorCodes.INVALID_ARGUMENT)
      expect(defaultRecycler()).toBe(made)
      expect(made.options.finDelayMs).toBe(DEFAULT_OPTIONS.finDelayMs)
    })
  })
})
