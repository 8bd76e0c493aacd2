import type { PooledFd } from '../pooled-fd.js'

/**
 * The release protocol's timers (finDelayMs, then drainTimeoutMs): one Node timer per recycler
 * instead of a setTimeout per connection. Nearly every such timer is cleared within a millisecond
 * (the peer's EOF comes first), and a Timeout per connection cost an object, its async-hooks
 * set-up, a list insert and, whenever the list for that duration had emptied meanwhile, a new
 * list, a priority-queue insert and a native call to reschedule the loop's timer (bench/profile.mjs).
 *
 * Here an armed fd joins the FIFO of its duration (insertion order is deadline order within one
 * duration); disarming is one Set delete. The single timer runs for the earliest deadline known
 * when it was set; a disarm never reschedules it: if it fires with nothing due, it is set again
 * for the next deadline, or not at all. Unref'd, as the per-fd timers were.
 */
export class ReleaseTimers {
  /** Armed fds by duration (ms); each Set in deadline order. */
  readonly #lists = new Map<number, Set<PooledFd>>()
  #timer: NodeJS.Timeout | null = null
  /** When #timer fires (performance.now() time base); meaningless while it is null. */
  #at = 0
  readonly #fire: (pooled: PooledFd) => void

  constructor(fire: (pooled: PooledFd) => void) {
    this.#fire = fire
  }

  /** (Re)arms `pooled`'s timer for `ms` from now; `fire(pooled)` then, unless disarmed first. */
  arm(pooled: PooledFd, ms: number): void {
    pooled.clearTimer()
    const deadline = performance.now() + ms
    let list = this.#lists.get(ms)
    if (!list) {
      list = new Set()
      this.#lists.set(ms, list)
    }
    list.add(pooled)
    pooled.timerList = list
    pooled.deadline = deadline
    if (this.#timer === null || deadline < this.#at) this.#schedule(deadline)
  }

  /** Stops the single timer (the recycler closed and every fd is settled). */
  stop(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  #schedule(deadline: number): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#at = deadline
    // setTimeout rounds down to whole ms against the loop's cached time: at least 1 ms, and a
    // timer that fires a little early finds its fd not due yet and sets itself again.
    this.#timer = setTimeout(this.#onTimeout, Math.max(1, Math.ceil(deadline - performance.now())))
    this.#timer.unref()
  }

  readonly #onTimeout = (): void => {
    this.#timer = null
    const now = performance.now()
    let due: PooledFd[] | null = null
    for (const [ms, list] of this.#lists) {
      if (list.size === 0) {
        this.#lists.delete(ms)
        continue
      }
      for (const pooled of list) {
        if (pooled.deadline > now) break
        ;(due ??= []).push(pooled)
      }
    }
    if (due) {
      if (due.length > 1) due.sort((a, b) => a.deadline - b.deadline)
      for (const pooled of due) {
        // an earlier callback in this batch may have disarmed or re-armed it
        if (pooled.timerList === null || pooled.deadline > now) continue
        pooled.clearTimer()
        this.#fire(pooled)
      }
    }
    // The earliest deadline left; a callback above may have armed the timer for a later one.
    let next = Number.POSITIVE_INFINITY
    for (const list of this.#lists.values()) {
      const first = list.values().next()
      if (!first.done && first.value.deadline < next) next = first.value.deadline
    }
    if (next === Number.POSITIVE_INFINITY) return
    if (this.#timer === null || next < this.#at) this.#schedule(next)
  }
}
