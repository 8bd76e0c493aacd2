import { describe, expect, it } from 'vitest'
import { TcpState } from '../../src/ffi/tcp-info.js'
import { canTransition, TRANSITIONS, type FdState } from '../../src/lifecycle.js'
import { step, type ReleaseAction, type ReleaseContext, type ReleaseEvent } from '../../src/release/protocol.js'

// Each row of the release protocol, without sockets: the state and facts in, the moves and actions out.

const ctx = (state: FdState, over: Partial<ReleaseContext> = {}): ReleaseContext => ({
  state, draining: false, timerArmed: false, finDelayZero: false, onDrainTimeout: 'close', ...over,
})
const left = (over: Partial<Extract<ReleaseEvent, { kind: 'tenant-left' }>> = {}): ReleaseEvent => ({
  kind: 'tenant-left', connectInFlight: false, reset: false, sawEof: false, peerFinIn: false, gone: false, tls: false, error: false, hasFd: true, ...over,
})
const kernel = (tcp: number): ReleaseEvent => ({ kind: 'kernel-state', tcp })

/** Actions as short strings: 'count:peerClosedFirst', 'fin', 'move:finished', 'release:parked', ... */
function ops(actions: readonly ReleaseAction[]): string[] {
  return actions.map((a) => {
    switch (a.op) {
      case 'count': return `count:${a.counter}`
      case 'move': return `move:${a.to}`
      case 'start-timer': return `timer:${a.timer}`
      case 'release': return `release:${a.to}`
      case 'dissolve': return a.knownTcp ? 'dissolve(known)' : 'dissolve'
      default: return a.op
    }
  })
}

function expectStep(c: ReleaseContext, e: ReleaseEvent, to: FdState, actions: string[]): void {
  const r = step(c, e)
  expect({ to: r.to, actions: ops(r.actions) }).toEqual({ to, actions })
  // every move in a row is one TRANSITIONS allows, from where the previous one left the fd
  let at = c.state
  for (const a of r.actions) {
    if (a.op === 'move') {
      expect(canTransition(at, a.to), `${at} -> ${a.to}`).toBe(true)
      at = a.to
    }
    if (a.op === 'release' || a.op === 'dissolve') {
      const target = a.op === 'release' ? a.to : 'idle'
      expect(canTransition(at, target) || at === target, `${at} -> ${target}`).toBe(true)
    }
  }
}

describe('release protocol: tenant ends (end())', () => {
  it('after the peer closed: our FIN, finished, peer counted first', () => {
    expectStep(ctx('peer-closed'), { kind: 'tenant-ended' }, 'finished', ['count:peerClosedFirst', 'fin', 'move:finished'])
  })
  it('open, finDelayMs > 0: FIN withheld, finDelay timer', () => {
    expectStep(ctx('open'), { kind: 'tenant-ended' }, 'awaiting-eof', ['move:awaiting-eof', 'timer:finDelay'])
  })
  it('open, finDelayMs 0: our FIN at once, counted first', () => {
    expectStep(ctx('open', { finDelayZero: true }), { kind: 'tenant-ended' }, 'fin-sent', ['count:finSentFirst', 'fin', 'move:fin-sent'])
  })
  it.each<FdState>(['awaiting-eof', 'fin-sent', 'finished'])('in %s: nothing', (s) => {
    expectStep(ctx(s), { kind: 'tenant-ended' }, s, [])
  })
})

describe('release protocol: peer EOF seen by the tenant', () => {
  it('open -> peer-closed', () => expectStep(ctx('open'), { kind: 'peer-eof' }, 'peer-closed', ['move:peer-closed']))
  it('awaiting-eof: timer cleared, peer first, our FIN, finished', () => {
    expectStep(ctx('awaiting-eof', { timerArmed: true }), { kind: 'peer-eof' }, 'finished',
      ['clear-timer', 'count:peerClosedFirst', 'fin', 'move:finished'])
  })
  it('fin-sent -> finished', () => expectStep(ctx('fin-sent'), { kind: 'peer-eof' }, 'finished', ['move:finished']))
  it.each<FdState>(['peer-closed', 'finished', 'connecting'])('in %s: nothing', (s) => {
    expectStep(ctx(s), { kind: 'peer-eof' }, s, [])
  })
})

describe('release protocol: tenant leaves while connecting (aborted connect)', () => {
  it('connect in flight with a socket: abort (AF_UNSPEC) and catch the callback in a drain', () => {
    expectStep(ctx('connecting'), left({ connectInFlight: true }), 'connecting', ['abort-connect-and-drain'])
  })
  it('failed connect with a socket: dissolve', () => expectStep(ctx('connecting'), left(), 'connecting', ['dissolve']))
  it('no kernel socket (EMFILE at connect): back fresh', () => {
    expectStep(ctx('connecting'), left({ hasFd: false }), 'connecting', ['release:fresh'])
    expectStep(ctx('connecting'), left({ hasFd: false, connectInFlight: true }), 'connecting', ['release:fresh'])
  })
  it('a failed attempt of a multi-address connect settles the same way', () => {
    expectStep(ctx('connecting'), { kind: 'attempt-failed', hasFd: true }, 'connecting', ['dissolve'])
    expectStep(ctx('connecting'), { kind: 'attempt-failed', hasFd: false }, 'connecting', ['release:fresh'])
  })
  it('an fd taken at connect() and let go before any connect was issued goes back as lent: no syscall', () => {
    expectStep(ctx('connecting'), { kind: 'never-connected', hasFd: true }, 'connecting', ['release:idle'])
    expectStep(ctx('connecting'), { kind: 'never-connected', hasFd: false }, 'connecting', ['release:fresh'])
  })
  it.each<FdState>(['open', 'awaiting-eof', 'finished'])('never-connected in %s (connected after all): nothing', (s) => {
    expectStep(ctx(s), { kind: 'never-connected', hasFd: true }, s, [])
  })
})

describe('release protocol: tenant leaves', () => {
  it.each<FdState>(['open', 'peer-closed', 'awaiting-eof', 'fin-sent', 'finished'])('resetAndDestroy() in %s: dissolve now', (s) => {
    expectStep(ctx(s), left({ reset: true }), s, ['dissolve'])
  })
  it('after reading the EOF in peer-closed: our FIN, parked', () => {
    expectStep(ctx('peer-closed'), left({ sawEof: true }), 'finished',
      ['count:peerClosedFirst', 'fin', 'move:finished', 'release:parked'])
  })
  it('after reading the EOF in finished: parked', () => {
    expectStep(ctx('finished'), left({ sawEof: true }), 'finished', ['release:parked'])
  })
  it('open, before the peer closed: drain, FIN withheld', () => {
    expectStep(ctx('open'), left(), 'awaiting-eof', ['move:awaiting-eof', 'drain', 'timer:finDelay'])
  })
  it('open, finDelayMs 0: drain, our FIN first, drain timer', () => {
    expectStep(ctx('open', { finDelayZero: true }), left(), 'fin-sent',
      ['move:awaiting-eof', 'drain', 'count:finSentFirst', 'fin', 'move:fin-sent', 'timer:drain'])
  })
  it('awaiting-eof with the finDelay timer running: drain, the timer goes on', () => {
    expectStep(ctx('awaiting-eof', { timerArmed: true }), left(), 'awaiting-eof', ['drain'])
  })
  it('fin-sent: drain with the drain timer', () => {
    expectStep(ctx('fin-sent'), left(), 'fin-sent', ['drain', 'timer:drain'])
  })
  it.each([
    ['TLS', { tls: true }],
    ['an error', { error: true }],
  ] as const)('after %s: ask the kernel', (_name, over) => {
    expectStep(ctx('open'), left(over), 'open', ['query-kernel'])
  })
  it.each<FdState>(['open', 'awaiting-eof'])('the peer\'s FIN in the kernel, unread, in %s: no drain, our FIN, parked', (s) => {
    expectStep(ctx(s, { timerArmed: s === 'awaiting-eof' }), left({ peerFinIn: true }), 'finished',
      ['clear-timer', 'count:peerClosedFirst', 'fin', 'move:finished', 'release:parked'])
  })
  it('the peer\'s FIN in the kernel after ours (fin-sent): no drain, parked', () => {
    expectStep(ctx('fin-sent', { timerArmed: true }), left({ peerFinIn: true }), 'finished', ['clear-timer', 'move:finished', 'release:parked'])
  })
  it('the peek sees EOF but the socket was destroyed with an error (a reset it read peeks as EOF too): ask the kernel', () => {
    expectStep(ctx('open'), left({ peerFinIn: true, error: true }), 'open', ['query-kernel'])
  })
  it('the peer\'s FIN in the kernel under TLS: ask the kernel (TLS may have sent our FIN)', () => {
    expectStep(ctx('open'), left({ peerFinIn: true, tls: true }), 'open', ['query-kernel'])
  })
  it.each<FdState>(['open', 'awaiting-eof', 'fin-sent'])('the peek met an error (a reset) in %s: ask the kernel, no drain', (s) => {
    expectStep(ctx(s), left({ gone: true }), s, ['query-kernel'])
  })
  it('EOF read but an error: ask the kernel', () => {
    expectStep(ctx('peer-closed'), left({ sawEof: true, error: true }), 'peer-closed', ['query-kernel'])
  })
  it('peer-closed without having read the EOF (cannot happen untrusted): ask the kernel', () => {
    expectStep(ctx('peer-closed'), left(), 'peer-closed', ['query-kernel'])
  })
})

describe('release protocol: the kernel state at tenant-left (TCP_INFO)', () => {
  it('CLOSE: dissolve with the state known', () => expectStep(ctx('open'), kernel(TcpState.CLOSE), 'open', ['dissolve(known)']))
  it('CLOSE_WAIT from open: peer-closed, our FIN, parked', () => {
    expectStep(ctx('open'), kernel(TcpState.CLOSE_WAIT), 'finished',
      ['move:peer-closed', 'count:peerClosedFirst', 'fin', 'move:finished', 'release:parked'])
  })
  it('CLOSE_WAIT from awaiting-eof: our FIN, parked', () => {
    expectStep(ctx('awaiting-eof'), kernel(TcpState.CLOSE_WAIT), 'finished',
      ['count:peerClosedFirst', 'fin', 'move:finished', 'release:parked'])
  })
  it('LAST_ACK: the peer closed first, parked', () => {
    expectStep(ctx('open'), kernel(TcpState.LAST_ACK), 'finished', ['count:peerClosedFirst', 'clear-timer', 'move:finished', 'release:parked'])
  })
  it('CLOSING: both FINs crossed, parked, nobody counted first', () => {
    expectStep(ctx('open'), kernel(TcpState.CLOSING), 'finished', ['clear-timer', 'move:finished', 'release:parked'])
  })
  it.each([TcpState.FIN_WAIT1, TcpState.FIN_WAIT2])('FIN_WAIT (%i) from open: our FIN went first through libuv, drain', (tcp) => {
    expectStep(ctx('open', { timerArmed: true }), kernel(tcp), 'fin-sent',
      ['count:finSentFirst', 'clear-timer', 'move:fin-sent', 'drain', 'timer:drain'])
  })
  it('FIN_WAIT from fin-sent: drain, timer kept if running', () => {
    expectStep(ctx('fin-sent'), kernel(TcpState.FIN_WAIT2), 'fin-sent', ['drain', 'timer:drain'])
    expectStep(ctx('fin-sent', { timerArmed: true }), kernel(TcpState.FIN_WAIT2), 'fin-sent', ['drain'])
  })
  it('ESTABLISHED from open: awaiting-eof, drain', () => {
    expectStep(ctx('open'), kernel(TcpState.ESTABLISHED), 'awaiting-eof', ['move:awaiting-eof', 'drain', 'timer:finDelay'])
  })
  it('ESTABLISHED from peer-closed: drain, no timer', () => {
    expectStep(ctx('peer-closed'), kernel(TcpState.ESTABLISHED), 'peer-closed', ['drain'])
  })
  it.each([TcpState.SYN_SENT, TcpState.TIME_WAIT, 42])('anything else (%i): dissolve', (tcp) => {
    expectStep(ctx('open'), kernel(tcp), 'open', ['dissolve(known)'])
  })
})

describe('release protocol: timers', () => {
  it('finDelayMs elapsed with the tenant still there: our FIN first, no drain timer', () => {
    expectStep(ctx('awaiting-eof'), { kind: 'timer', peerFinIn: false }, 'fin-sent', ['count:finSentFirst', 'fin', 'move:fin-sent'])
  })
  it.each([false, true])('finDelayMs elapsed with the peer FIN already in the kernel (draining %s): the peer closed first', (draining) => {
    expectStep(ctx('awaiting-eof', { draining }), { kind: 'timer', peerFinIn: true }, 'finished', ['count:peerClosedFirst', 'fin', 'move:finished'])
  })
  it('finDelayMs elapsed while draining: our FIN first, then the drain timer', () => {
    expectStep(ctx('awaiting-eof', { draining: true }), { kind: 'timer', peerFinIn: false }, 'fin-sent',
      ['count:finSentFirst', 'fin', 'move:fin-sent', 'timer:drain'])
  })
  it("drainTimeoutMs elapsed, onDrainTimeout 'close': close", () => {
    expectStep(ctx('fin-sent', { draining: true }), { kind: 'timer', peerFinIn: false }, 'fin-sent', ['count:drainTimeouts', 'drain-timed-out', 'close'])
  })
  it("drainTimeoutMs elapsed, onDrainTimeout 'reset': dissolve (RST)", () => {
    expectStep(ctx('fin-sent', { draining: true, onDrainTimeout: 'reset' }), { kind: 'timer', peerFinIn: false }, 'fin-sent',
      ['count:drainTimeouts', 'drain-timed-out', 'dissolve'])
  })
  it('a stale timer changes nothing', () => {
    expectStep(ctx('fin-sent'), { kind: 'timer', peerFinIn: false }, 'fin-sent', [])
    expectStep(ctx('finished', { draining: true }), { kind: 'timer', peerFinIn: false }, 'finished', [])
  })
})

describe('release protocol: drain reports', () => {
  it('EOF in awaiting-eof: peer first, our FIN, parked', () => {
    expectStep(ctx('awaiting-eof', { draining: true }), { kind: 'drain-eof' }, 'finished',
      ['clear-timer', 'count:peerClosedFirst', 'fin', 'move:finished', 'release:parked'])
  })
  it('EOF in fin-sent: finished, parked', () => {
    expectStep(ctx('fin-sent'), { kind: 'drain-eof' }, 'finished', ['clear-timer', 'move:finished', 'release:parked'])
  })
  it('EOF in finished: parked', () => expectStep(ctx('finished'), { kind: 'drain-eof' }, 'finished', ['clear-timer', 'release:parked']))
  it('EOF in another state: dissolve', () => expectStep(ctx('peer-closed'), { kind: 'drain-eof' }, 'peer-closed', ['clear-timer', 'dissolve']))
  it.each<FdState>(['awaiting-eof', 'fin-sent', 'connecting'])('error in %s: dissolve', (s) => {
    expectStep(ctx(s), { kind: 'drain-error' }, s, ['dissolve'])
  })
  it.each<FdState>(['awaiting-eof', 'fin-sent'])('data after the tenant left in %s: dissolve (RST, as a plain close)', (s) => {
    expectStep(ctx(s, { draining: true }), { kind: 'drain-data' }, s, ['dissolve'])
  })
  it('an aborted connect that won the race: dissolve again (reset)', () => {
    expectStep(ctx('connecting'), { kind: 'connect-done', failed: false }, 'connecting', ['dissolve'])
  })
  it('an aborted connect that failed: already dissolved, back idle', () => {
    expectStep(ctx('connecting'), { kind: 'connect-done', failed: true }, 'connecting', ['release:idle'])
  })
})

describe('release protocol: the table as a whole', () => {
  const states = Object.keys(TRANSITIONS) as FdState[]
  const events: ReleaseEvent[] = [
    { kind: 'tenant-ended' }, { kind: 'peer-eof' }, { kind: 'timer', peerFinIn: false }, { kind: 'timer', peerFinIn: true }, { kind: 'drain-eof' }, { kind: 'drain-error' }, { kind: 'drain-data' },
    { kind: 'connect-done', failed: true }, { kind: 'connect-done', failed: false },
    ...Array.from({ length: 256 }, (_, i) => left({
      connectInFlight: (i & 1) !== 0, reset: (i & 2) !== 0, sawEof: (i & 4) !== 0, tls: (i & 8) !== 0, error: (i & 16) !== 0, hasFd: (i & 32) !== 0,
      peerFinIn: (i & 64) !== 0, gone: (i & 128) !== 0,
    })),
    ...Object.values(TcpState).map(kernel),
  ]
  it('returns the same frozen result for the same input (no allocation per step)', () => {
    for (const s of states) {
      for (const e of events) {
        const a = step(ctx(s), e)
        expect(step(ctx(s), e)).toBe(a)
        expect(Object.isFrozen(a) && Object.isFrozen(a.actions)).toBe(true)
      }
    }
  })
  it('ends every action list with at most one release, dissolve or close, and nothing after it', () => {
    for (const s of states) {
      for (const e of events) {
        const { actions } = step(ctx(s, { draining: true }), e)
        const last = actions.findIndex((a) => a.op === 'release' || a.op === 'dissolve' || a.op === 'close' || a.op === 'query-kernel')
        if (last >= 0) expect(last).toBe(actions.length - 1)
      }
    }
  })
})

describe('release protocol and TRANSITIONS agree', () => {
  it('every allowed move is made by a row of the table or by one of the few moves outside it', () => {
    const states = Object.keys(TRANSITIONS) as FdState[]
    const made = new Set<string>([
      // outside the release table: checkout, libuv's connect callback, validation on borrow,
      // close(2) from any live state
      'fresh -> connecting', 'idle -> connecting', 'connecting -> open', 'parked -> idle',
      ...states.filter((s) => s !== 'closed').map((s) => `${s} -> closed`),
    ])
    const events: ReleaseEvent[] = [
      { kind: 'tenant-ended' }, { kind: 'peer-eof' }, { kind: 'timer' }, { kind: 'drain-eof' }, { kind: 'drain-error' },
      { kind: 'connect-done', failed: true }, { kind: 'connect-done', failed: false },
      { kind: 'attempt-failed', hasFd: true }, { kind: 'attempt-failed', hasFd: false },
      { kind: 'never-connected', hasFd: true }, { kind: 'never-connected', hasFd: false },
      ...Array.from({ length: 256 }, (_, i) => left({
        connectInFlight: (i & 1) !== 0, reset: (i & 2) !== 0, sawEof: (i & 4) !== 0, tls: (i & 8) !== 0, error: (i & 16) !== 0, hasFd: (i & 32) !== 0,
        peerFinIn: (i & 64) !== 0, gone: (i & 128) !== 0,
      })),
      ...Object.values(TcpState).map(kernel),
    ]
    // the states a tenant or a drain can hold an fd in
    for (const s of ['connecting', 'open', 'peer-closed', 'awaiting-eof', 'fin-sent', 'finished'] as FdState[]) {
      for (const e of events) {
        for (const draining of [false, true]) {
          for (const finDelayZero of [false, true]) {
            let at = s
            for (const a of step(ctx(s, { draining, finDelayZero }), e).actions) {
              const to = a.op === 'move' ? a.to : a.op === 'release' ? a.to : a.op === 'dissolve' ? 'idle' : null
              if (!to || to === at || !canTransition(at, to)) continue
              made.add(`${at} -> ${to}`)
              at = to
            }
          }
        }
      }
    }
    const allowed = (Object.entries(TRANSITIONS) as [FdState, readonly FdState[]][]).flatMap(([from, tos]) => tos.map((to) => `${from} -> ${to}`))
    expect(allowed.filter((edge) => !made.has(edge)), 'allowed but never made').toEqual([])
  })
})
