import { InvalidOptionError, type SocketRecycler } from '@fdrecycle/core'
import { loadFromApp } from './is-installed.js'
import { METRICS } from './metrics.js'
import { VERSION } from './version.js'

/** The part of @opentelemetry/api used here (1.x). */
export interface OtelApi {
  metrics: {
    getMeterProvider(): OtelMeterProvider
  }
}
interface OtelMeterProvider {
  getMeter(name: string, version?: string): OtelMeter
}
interface OtelObservable {
  readonly __brand?: unique symbol
}
interface OtelMeter {
  createObservableCounter(name: string, options: { description: string; unit: string }): OtelObservable
  createObservableUpDownCounter(name: string, options: { description: string; unit: string }): OtelObservable
  addBatchObservableCallback(callback: OtelBatchCallback, observables: OtelObservable[]): void
  removeBatchObservableCallback(callback: OtelBatchCallback, observables: OtelObservable[]): void
}
type OtelBatchCallback = (result: { observe(observable: OtelObservable, value: number): void }) => void

export interface OpenTelemetryOptions {
  /** The @opentelemetry/api to use. @default the app's (resolved from the working directory) */
  api?: OtelApi
  /**
   * How often the global MeterProvider is looked at for a new one (an unref'd timer).
   * @default 1000
   */
  checkEveryMs?: number
}

/**
 * The recycler's stats() as OpenTelemetry metrics on the global MeterProvider (meter
 * `@fdrecycle/auto`): observable counters for the monotonic counts, observable up-down counters
 * for the current ones (idle, cooling, active, draining); one stats() snapshot per collection.
 * Names and units: docs/observability.md.
 *
 * A preload runs before the app sets its MeterProvider up, and the API has no proxy for meters
 * (a meter taken before that is the no-op one) nor an event for a new provider that every copy of
 * the API would see (its CommonJS and ESM builds are two singletons over one global). So the
 * global provider is looked at every `checkEveryMs` on an unref'd timer, and the instruments are
 * made again on each new one (and taken off the one before). The values are counts since the
 * recycler was made, so a collection made before that look loses nothing.
 *
 * Returns an undo: stops looking and removes the callback.
 */
export function installOpenTelemetry(recycler: SocketRecycler, options: OpenTelemetryOptions = {}): () => void {
  const api = options.api ?? loadFromApp<OtelApi>('@opentelemetry/api')
  const checkEveryMs = options.checkEveryMs ?? 1000
  if (!Number.isInteger(checkEveryMs) || checkEveryMs < 1 || checkEveryMs > 2 ** 31 - 1) {
    throw new InvalidOptionError('checkEveryMs', `expected an integer from 1 to ${2 ** 31 - 1}, received ${String(checkEveryMs)}`)
  }
  let provider: OtelMeterProvider | undefined
  let unregister: (() => void) | undefined
  const check = (): void => {
    const current = api.metrics.getMeterProvider()
    if (current === provider) return
    unregister?.()
    provider = current
    unregister = register(current.getMeter('@fdrecycle/auto', VERSION), recycler)
  }
  check()
  const timer = setInterval(check, checkEveryMs)
  timer.unref()
  return () => {
    clearInterval(timer)
    unregister?.()
    unregister = undefined
  }
}

function register(meter: OtelMeter, recycler: SocketRecycler): () => void {
  const instruments = METRICS.map((row) => {
    const options = { description: row.description, unit: row.unit }
    return {
      row,
      observable: row.kind === 'counter' ? meter.createObservableCounter(row.name, options) : meter.createObservableUpDownCounter(row.name, options),
    }
  })
  const callback: OtelBatchCallback = (result) => {
    const stats = recycler.stats()
    for (const { row, observable } of instruments) result.observe(observable, stats[row.stat])
  }
  const observables = instruments.map((i) => i.observable)
  meter.addBatchObservableCallback(callback, observables)
  return () => meter.removeBatchObservableCallback(callback, observables)
}
