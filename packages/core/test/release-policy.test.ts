import { describe, expect, it } from 'vitest'
import { ReleasePolicy } from '../src/release-policy.js'

const DEST = '127.0.0.1:5432'
const PROBE = 1000

function policy(overrides: Partial<ConstructorParameters<typeof ReleasePolicy>[0]> = {}) {
  let now = 0
  const p = new ReleasePolicy({ probeMs: PROBE, now: () => now, ...overrides })
  return { p, advance: (ms: number) => void (now += ms) }
}

describe('ReleasePolicy (adaptive finDelay per destination)', () => {
  it('probes an unknown destination with the full wait', () => {
    const { p } = policy()
    expect(p.finDelay(DEST)).toBe(PROBE)
    expect(p.verdict(DEST)).toBe('unknown')
  })

  it('a peer that waits for our FIN gets it at once after one full probe', () => {
    const { p } = policy()
    p.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    expect(p.verdict(DEST)).toBe('waits-for-fin')
    for (let i = 0; i < 50; i++) {
      expect(p.finDelay(DEST)).toBe(0)
      p.record(DEST, { peerClosedFirst: false, elapsedMs: 0, withheldMs: 0 })
    }
  })

  it('a peer that closes first gets a wait bounded by the observed delay and RTT, with margin', () => {
    const { p } = policy({ floorMs: 100, margin: 4 })
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 3, withheldMs: PROBE, rttMs: 0.5 })
    expect(p.verdict(DEST)).toBe('closes-first')
    expect(p.finDelay(DEST)).toBe(Math.ceil(100 + 4 * (3 + 0.5)))
  })

  it('the learnt wait never exceeds the probe', () => {
    const { p } = policy()
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 900, withheldMs: PROBE })
    expect(p.finDelay(DEST)).toBe(PROBE)
  })

  it('a delay spike raises the wait at once and is forgotten slowly', () => {
    const { p } = policy({ floorMs: 0, margin: 1 })
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 10, withheldMs: PROBE })
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 200, withheldMs: 40 })
    expect(p.finDelay(DEST)).toBe(200)
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 10, withheldMs: 200 })
    expect(p.finDelay(DEST)).toBe(180)
    for (let i = 0; i < 60; i++) p.record(DEST, { peerClosedFirst: true, elapsedMs: 10, withheldMs: 200 })
    expect(p.finDelay(DEST)).toBe(10)
  })

  it('a learnt wait that runs out makes the next goodbye a full probe, which settles the verdict', () => {
    const { p } = policy()
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 2, withheldMs: PROBE })
    const wait = p.finDelay(DEST)
    expect(wait).toBeLessThan(PROBE)
    p.record(DEST, { peerClosedFirst: false, elapsedMs: wait, withheldMs: wait })
    expect(p.verdict(DEST)).toBe('unknown')
    expect(p.finDelay(DEST)).toBe(PROBE)
    p.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    expect(p.verdict(DEST)).toBe('waits-for-fin')
    expect(p.finDelay(DEST)).toBe(0)
  })

  it('a waiting peer seen closing before the goodbye is learnt as closing first, at no cost', () => {
    const { p } = policy()
    p.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 0, withheldMs: 0 })
    expect(p.verdict(DEST)).toBe('closes-first')
    expect(p.finDelay(DEST)).toBeGreaterThan(0)
  })

  it('re-probes a waiting peer every reprobeEvery connections, one connection at a time', () => {
    const { p } = policy({ reprobeEvery: 10, reprobeAfterMs: 1e9 })
    p.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    const waits: number[] = []
    for (let i = 0; i < 25; i++) {
      const w = p.finDelay(DEST)
      waits.push(w)
      p.record(DEST, { peerClosedFirst: false, elapsedMs: w, withheldMs: w })
    }
    expect(waits.filter((w) => w === PROBE)).toHaveLength(2)
    // ten connections after the probe that found it waiting, the next probe
    expect(waits.indexOf(PROBE)).toBe(10)
    // connections in flight when the probe is decided do not probe too
    const { p: q } = policy({ reprobeEvery: 1, reprobeAfterMs: 1e9 })
    q.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    q.record(DEST, { peerClosedFirst: false, elapsedMs: 0, withheldMs: 0 })
    expect([q.finDelay(DEST), q.finDelay(DEST), q.finDelay(DEST)]).toEqual([PROBE, 0, 0])
  })

  it('re-probes a waiting peer once reprobeAfterMs has passed', () => {
    const { p, advance } = policy({ reprobeEvery: 1e6, reprobeAfterMs: 30_000 })
    p.record(DEST, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    advance(29_999)
    expect(p.finDelay(DEST)).toBe(0)
    advance(1)
    expect(p.finDelay(DEST)).toBe(PROBE)
    expect(p.finDelay(DEST)).toBe(0)
  })

  it('destinations are learnt apart (address and port)', () => {
    const { p } = policy()
    p.record('127.0.0.1:7', { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    expect(p.finDelay('127.0.0.1:7')).toBe(0)
    expect(p.finDelay('127.0.0.1:6379')).toBe(PROBE)
    expect(p.finDelay('127.0.0.2:7')).toBe(PROBE)
  })

  it('keeps at most maxEntries destinations, the least recently used out first', () => {
    const { p } = policy({ maxEntries: 3 })
    const waits = (d: string) => p.record(d, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    waits('a:1')
    waits('b:1')
    waits('c:1')
    waits('a:1') // a is now the most recent
    waits('d:1') // b goes
    expect(p.size).toBe(3)
    expect(p.verdict('b:1')).toBe('unknown')
    expect(p.finDelay('b:1')).toBe(PROBE)
    for (const d of ['a:1', 'c:1', 'd:1']) expect(p.verdict(d)).toBe('waits-for-fin')
  })

  it('keeps the recency order when a destination is recorded again while it is the most recent', () => {
    const { p } = policy({ maxEntries: 3 })
    const waits = (d: string) => p.record(d, { peerClosedFirst: false, elapsedMs: PROBE, withheldMs: PROBE })
    waits('a:1')
    waits('b:1')
    waits('a:1')
    waits('a:1') // already the most recent: stays so
    waits('c:1')
    waits('d:1') // b is the least recently used
    expect(p.verdict('b:1')).toBe('unknown')
    waits('e:1') // then a
    expect(p.verdict('a:1')).toBe('unknown')
    for (const d of ['c:1', 'd:1', 'e:1']) expect(p.verdict(d)).toBe('waits-for-fin')
  })

  it('asks for an RTT on the first observation and then every rttEvery', () => {
    const { p } = policy({ rttEvery: 4 })
    expect(p.wantsRtt(DEST)).toBe(true)
    p.record(DEST, { peerClosedFirst: true, elapsedMs: 1, withheldMs: PROBE, rttMs: 0.1 })
    const asked: boolean[] = []
    for (let i = 0; i < 8; i++) {
      const want = p.wantsRtt(DEST)
      asked.push(want)
      p.record(DEST, { peerClosedFirst: true, elapsedMs: 1, withheldMs: 10, ...(want ? { rttMs: 0.1 } : {}) })
    }
    // observation 1 carried one; observation 1 + 4 is the next
    expect(asked).toEqual([false, false, false, false, true, false, false, false])
  })
})
