import { writeSync } from 'node:fs'
import { InvalidArgumentError, type RecyclerStats, type SocketRecycler } from '@fdrecycle/core'

/** Where FDRECYCLE_REPORT sends its summary line. */
export type ReportTarget = 'stderr'

/** The SIGUSR2 listeners of installReport(), told apart from the app's. */
const reporters = new WeakSet<(...args: never[]) => unknown>()

/** The one-line summary of a stats() snapshot: `fdrecycle: mode=recycling connections=12 ...`. */
export function summaryLine(stats: RecyclerStats): string {
  return `fdrecycle: ${Object.entries(stats).map(([key, value]) => `${key}=${String(value)}`).join(' ')}\n`
}

/**
 * FDRECYCLE_REPORT=stderr: one summary line of the recycler's stats() on stderr when the process
 * exits, and on SIGUSR2. Nothing here keeps the process alive (Node's signal handles are unref'd).
 *
 * SIGUSR2 ends a Node process that has no listener for it (nodemon relies on that to restart an
 * app): when the app has no SIGUSR2 listener of its own, ours writes the line, steps aside and
 * sends the signal again, so the process ends by SIGUSR2 as it would have. With a listener of the
 * app's, the line is written and the app's listener decides.
 */
export function installReport(recycler: SocketRecycler, target: ReportTarget): () => void {
  if (target !== 'stderr') throw new InvalidArgumentError(`installReport(recycler, target): the known target is 'stderr', received ${String(target)}`)
  // Synchronous writes: 'exit' listeners cannot wait, and a signal may end the process next.
  const write = (): void => {
    try {
      writeSync(2, summaryLine(recycler.stats()))
    } catch {}
  }
  const onSignal = (): void => {
    write()
    // Only reports listen (one per recycler reported): the last of them re-raises, once all wrote.
    const listeners = process.listeners('SIGUSR2')
    if (listeners.every((l) => reporters.has(l)) && listeners[listeners.length - 1] === onSignal) {
      for (const l of listeners) process.removeListener('SIGUSR2', l)
      process.kill(process.pid, 'SIGUSR2')
    }
  }
  reporters.add(onSignal)
  process.on('exit', write)
  process.on('SIGUSR2', onSignal)
  return () => {
    process.removeListener('exit', write)
    process.removeListener('SIGUSR2', onSignal)
  }
}
