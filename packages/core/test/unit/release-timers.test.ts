import { describe, expect, it } from 'vitest'
import { PooledFd } from '../../src/pooled-fd.js'
import { ReleaseTimers } from '../../src/release/timers.js'

// The release protocol's timers share one Node timer (release/timers.ts). These run real, short
// timers: each test waits for the callbacks it expects, never for a fixed time.

/** An fd as far as the timers see it (its timer fields and clearTimer()), without a socket. */
function fakeFd(name: string): PooledFd {
  const fd = Object.create(PooledFd.prototype) as PooledFd & { name: string }
  Object.assign(fd, { name, timerList: null, deadline: 0 })
  return fd
}

function recorder() {
  const fired: string[] = []
  const waiters = new Map<string, () => void>()
  const timers = new ReleaseTimers((pooled) => {
    const name = (pooled as PooledFd & { name: string }).name
    fired.push(name)
    waiters.get(name)?.()
  })
  const firedOf = (name: string) => new Promise<void>((resolve) => waiters.set(name, resolve))
  return { timers, fired, firedOf }
}

describe('release timers (one Node timer per recycler)', () => {
  it('fires each armed fd once, in deadline order across durations', async () => {
    const { timers, fired, firedOf } = recorder()
    const [a, b, c] = [fakeFd('a'), fakeFd('b'), fakeFd('c')]
    const last = firedOf('a')
    timers.arm(a, 60)
    timers.arm(b, 10)
    timers.arm(c, 30)
    expect([a.timerArmed, b.timerArmed, c.timerArmed]).toEqual([true, true, true])
    await last
    expect(fired).toEqual(['b', 'c', 'a'])
    expect([a.timerArmed, b.timerArmed, c.timerArmed]).toEqual([false, false, false])
    timers.stop()
  })

  it('a cleared timer never fires; re-arming replaces the deadline', async () => {
    const { timers, fired, firedOf } = recorder()
    const [gone, moved, sentinel] = [fakeFd('gone'), fakeFd('moved'), fakeFd('sentinel')]
    timers.arm(gone, 5)
    timers.arm(moved, 5)
    gone.clearTimer()
    timers.arm(moved, 40) // later than the sentinel
    const done = firedOf('moved')
    timers.arm(sentinel, 20)
    await done
    expect(fired).toEqual(['sentinel', 'moved'])
    timers.stop()
  })

  // What broke while this was written: a callback that armed a long timer (drainTimeoutMs after
  // our FIN) left the single timer set for that deadline, and the other fds' short finDelay
  // timers waited for it (close() took 5.9 s instead of 1 s in emfile-from-drains).
  it('a long timer armed from a callback does not delay a shorter one already armed', async () => {
    const long = fakeFd('long')
    const fired: string[] = []
    let resolveShort!: () => void
    const short = new Promise<void>((resolve) => (resolveShort = resolve))
    const timers = new ReleaseTimers((pooled) => {
      const name = (pooled as PooledFd & { name: string }).name
      fired.push(name)
      if (name === 'first') timers.arm(long, 60_000)
      if (name === 'second') resolveShort()
    })
    timers.arm(fakeFd('first'), 5)
    timers.arm(fakeFd('second'), 25)
    await short // without the fix, 60 s later: the test's timeout fails it
    expect(fired).toEqual(['first', 'second'])
    expect(long.timerArmed).toBe(true)
    long.clearTimer()
    timers.stop()
  }, 10_000)
})
