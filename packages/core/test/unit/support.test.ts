import { readdirSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import { probeRoundTrip } from '../../src/internals/probe.js'
import { decideSupport, recyclingSupport, untestedNodeReason, type SupportInputs } from '../../src/support.js'

const isLinux = process.platform === 'linux'

function inputs(over: Partial<SupportInputs> = {}): SupportInputs & { emitWarning: ReturnType<typeof vi.fn>; probe: ReturnType<typeof vi.fn> } {
  return { platform: 'linux', nodeVersion: '22.11.0', env: {}, emitWarning: vi.fn(), probe: vi.fn(), ...over } as never
}

describe('which Node majors recycle', () => {
  it.each(['20.19.0', '22.0.0', '24.3.1', '26.0.0', 'v22.1.0'])('%s: a tested major', (v) => {
    expect(untestedNodeReason(v, {})).toBeUndefined()
  })
  it.each(['21.7.3', '23.0.0', '25.1.0', '27.0.0', '18.20.0'])('%s: untested, plain sockets unless opted in', (v) => {
    expect(untestedNodeReason(v, {})).toMatch(/FDRECYCLE_UNTESTED_NODE=1/)
    expect(untestedNodeReason(v, { FDRECYCLE_UNTESTED_NODE: '1' })).toBeUndefined()
  })

  it('an untested major falls back with one FDRECYCLE_UNTESTED_NODE warning and no probe', () => {
    const i = inputs({ nodeVersion: '27.0.0' })
    const support = decideSupport(i)
    expect(support.supported).toBe(false)
    expect(support.reason).toMatch(/Node 27\.0\.0/)
    expect(i.emitWarning).toHaveBeenCalledTimes(1)
    expect(i.emitWarning.mock.calls[0]![1]).toEqual({ code: 'FDRECYCLE_UNTESTED_NODE' })
    expect(i.probe).not.toHaveBeenCalled()
  })

  it('FDRECYCLE_UNTESTED_NODE=1 opts in: the probe decides, no warning', () => {
    const i = inputs({ nodeVersion: '27.0.0', env: { FDRECYCLE_UNTESTED_NODE: '1' } })
    expect(decideSupport(i).supported).toBe(true)
    expect(i.probe).toHaveBeenCalledTimes(1)
    expect(i.emitWarning).not.toHaveBeenCalled()
  })

  it('a tested major runs the probe; any surprise in it means plain sockets, silently', () => {
    const i = inputs({ probe: vi.fn(() => { throw new Error('probe: CLOSE_WAIT, not CLOSE, within 1000 ms') }) })
    const support = decideSupport(i)
    expect(support).toMatchObject({ supported: false, reason: 'probe: CLOSE_WAIT, not CLOSE, within 1000 ms' })
    expect(support.error).toBeInstanceOf(Error)
    expect(i.emitWarning).not.toHaveBeenCalled()
  })

  it('FDRECYCLE_DISABLE=1 wins over everything', () => {
    const i = inputs({ env: { FDRECYCLE_DISABLE: '1' } })
    expect(decideSupport(i).supported).toBe(false)
    expect(i.probe).not.toHaveBeenCalled()
  })
})

describe.runIf(isLinux)('the support probe on this machine', () => {
  it('does a real connect / release / reuse round trip on loopback and leaves no fd open', async () => {
    recyclingSupport() // koffi and the internals loaded, so the count below sees only the probe's fds
    const before = readdirSync('/proc/self/fd').length
    probeRoundTrip()
    // the adopted handle's close(2) runs in libuv's close callback, a loop turn later
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    expect(readdirSync('/proc/self/fd').length).toBe(before)
  })

  it('says this process can recycle', () => {
    expect(recyclingSupport()).toEqual({ supported: true })
  })
})
