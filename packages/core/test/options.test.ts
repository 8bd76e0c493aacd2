import { describe, expect, it } from 'vitest'
import { DEFAULT_OPTIONS, ErrorCodes, FdRecycleError, InvalidOptionError, SocketRecycler, validateOptions } from '@fdrecycle/core'

describe('options', () => {
  it('defaults are frozen and complete', () => {
    expect(Object.isFrozen(DEFAULT_OPTIONS)).toBe(true)
    expect(validateOptions(undefined)).toBe(DEFAULT_OPTIONS)
    expect(validateOptions({})).toEqual(DEFAULT_OPTIONS)
  })

  const bad: Array<[string, unknown, RegExp]> = [
    ['maxIdle', -1, /maxIdle: expected an integer from 0/],
    ['maxIdle', 1.5, /maxIdle: expected an integer, received the number 1.5/],
    ['maxIdle', '10', /maxIdle: expected an integer, received the string '10'/],
    ['finDelayMs', Number.NaN, /finDelayMs: expected an integer/],
    ['finDelayMs', 2 ** 31, /finDelayMs: expected an integer from 0 to 2147483647/],
    ['drainTimeoutMs', 0, /drainTimeoutMs: expected an integer from 1/],
    ['acquireTimeoutMillis', 0, /acquireTimeoutMillis: expected an integer from 1/],
    ['onDrainTimeout', 'rst', /onDrainTimeout: expected one of 'close', 'reset', received the string 'rst'/],
    ['mode', null, /mode: expected one of 'auto', 'recycle', 'passthrough', received null/],
    ['resetSocketOptions', true, /resetSocketOptions: expected one of/],
    ['releasePolicy', 'learn', /releasePolicy: expected one of 'adaptive', 'fixed', received the string 'learn'/],
    ['releasePolicy', 1, /releasePolicy: expected one of 'adaptive', 'fixed', received the number 1/],
    ['maxDraining', 0, /maxDraining: expected an integer from 1/],
    ['maxDraining', 2.5, /maxDraining: expected an integer, received the number 2.5/],
    ['maxDraining', 'all', /maxDraining: expected 'auto' or an integer, received the string 'all'/],
    ['maxSokets', 3, /Invalid option maxSokets: unknown option; known options are mode, finDelayMs/],
  ]
  it.each(bad)('%s = %o is rejected with a typed error naming the option', (option, value, message) => {
    let caught: unknown
    try {
      new SocketRecycler({ [option]: value } as never)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(InvalidOptionError)
    expect(caught).toBeInstanceOf(FdRecycleError)
    expect((caught as InvalidOptionError).code).toBe(ErrorCodes.INVALID_OPTION)
    expect((caught as InvalidOptionError).option).toBe(option)
    expect((caught as Error).message).toMatch(message)
  })

  it('rejects options that are not an object', () => {
    expect(() => new SocketRecycler(42 as never)).toThrow(/Invalid option options: expected an object, received the number 42/)
    expect(() => new SocketRecycler([] as never)).toThrow(/received an array/)
  })

  it('rejects contradictory limits', () => {
    expect(() => new SocketRecycler({ minIdle: 5, maxSockets: 2 })).toThrow(/minIdle \(5\) exceeds maxSockets \(2\)/)
    expect(() => new SocketRecycler({ minIdle: 5, maxIdle: 2 })).toThrow(/minIdle \(5\) exceeds maxIdle \(2\)/)
  })

  it('undefined means the default', () => {
    expect(validateOptions({ finDelayMs: undefined }).finDelayMs).toBe(DEFAULT_OPTIONS.finDelayMs)
  })

  it('errors are recognised across copies of the package (Symbol.for brand)', () => {
    const foreign = Object.assign(new Error('x'), { code: 'ERR_FDRECYCLE_INVALID_OPTION', [Symbol.for('fdrecycle.error')]: true })
    expect(foreign).toBeInstanceOf(FdRecycleError)
    expect(new Error('y')).not.toBeInstanceOf(FdRecycleError)
  })
})

describe('options: releasePolicy', () => {
  it("is 'adaptive' by default, 'fixed' when finDelayMs is given, and as asked when both are", () => {
    expect(validateOptions({}).releasePolicy).toBe('adaptive')
    expect(validateOptions({ finDelayMs: 250 }).releasePolicy).toBe('fixed')
    expect(validateOptions({ finDelayMs: 250, releasePolicy: 'adaptive' })).toMatchObject({ finDelayMs: 250, releasePolicy: 'adaptive' })
    expect(validateOptions({ releasePolicy: 'fixed' })).toMatchObject({ finDelayMs: 1000, releasePolicy: 'fixed' })
  })

  it("maxDraining takes 'auto' or a positive integer", () => {
    expect(validateOptions({}).maxDraining).toBe('auto')
    expect(validateOptions({ maxDraining: 64 }).maxDraining).toBe(64)
  })
})
