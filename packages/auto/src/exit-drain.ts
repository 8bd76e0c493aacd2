// At the end of the app (the event loop is empty: 'beforeExit'), sockets whose FIN the recycler
// still withholds for the peer's are given that goodbye before the process exits: otherwise the
// exit closes them, our FIN goes first and the TIME_WAIT stays here (the last pg connection of a
// pool.end(), whose server closes a moment later). Bounded by the recycler's finDelayMs, once per
// batch: the recycler's own timers are unref()ed, so this is the only thing that holds the exit.
// process.exit() and signals skip 'beforeExit': those exits close what is open, as without us.
import diagnosticsChannel from 'node:diagnostics_channel'
import type { SocketRecycler } from '@fdrecycle/core'

/** Installs the 'beforeExit' wait; returns its removal. */
export function drainAtExit(recycler: SocketRecycler): () => void {
  let waiting = false
  /** fds created + connections when a wait last ran out: no new work since, no second wait */
  let gaveUpAt = -1
  const onBeforeExit = (): void => {
    if (waiting || recycler.closed) return
    const stats = recycler.stats()
    const mark = stats.fdsCreated + stats.connections
    if (stats.draining === 0 || mark === gaveUpAt) return
    waiting = true
    const done = (drained: boolean): void => {
      if (!waiting) return
      clearTimeout(timer)
      diagnosticsChannel.unsubscribe('fdrecycle:fd:transition', onTransition)
      waiting = false
      if (!drained) gaveUpAt = mark
    }
    // every fd state change is published there; the last drain ending is one of them (checked
    // on the next turn, once the recycler's own bookkeeping of that change is complete)
    const onTransition = (): void => {
      setImmediate(() => {
        if (recycler.stats().draining === 0) done(true)
      })
    }
    diagnosticsChannel.subscribe('fdrecycle:fd:transition', onTransition)
    // a ref'd timer: it keeps the loop alive for the wait, and bounds it
    const timer = setTimeout(() => done(recycler.stats().draining === 0), recycler.options.finDelayMs + 100)
  }
  process.on('beforeExit', onBeforeExit)
  return () => {
    process.off('beforeExit', onBeforeExit)
  }
}
