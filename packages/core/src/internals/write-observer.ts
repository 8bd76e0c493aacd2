import type { Duplex } from 'node:stream'

/** Each installed wrapper -> the write() it wraps (the chain when several observers watch one stream). */
const wrapped = new WeakMap<Duplex['write'], Duplex['write']>()

/**
 * Calls `observer` with every chunk written to `stream` through `write()`, for the stream's life.
 * An instance-level `write` does not survive a connect on every Node: net.Socket#connect() puts
 * the prototype's `write` back on the instance (it undoes the write-after-FIN guard of an earlier
 * connection). So the wrapper is checked, and put back if gone, at every `'connect'`: before a
 * client writes its first command, and without relying on what connect() does.
 */
export function observeWrites(stream: Duplex, observer: (chunk: unknown) => void): void {
  let mine: Duplex['write'] | undefined
  const install = (): void => {
    for (let w: Duplex['write'] | undefined = stream.write; w; w = wrapped.get(w)) if (w === mine) return
    const write = stream.write
    const observed = function writeObserved(this: Duplex, chunk: unknown, ...rest: unknown[]): boolean {
      observer(chunk)
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
    } as Duplex['write']
    wrapped.set(observed, write)
    mine = observed
    stream.write = observed
  }
  install()
  stream.on('connect', install)
}
