import type { SocketRecycler } from '@fdrecycle/core'
import { loadFromApp } from './is-installed.js'
import { METRICS } from './metrics.js'
import { VERSION } from './version.js'

/** The part of @opentelemetry/api used here (1.x). */
interface OtelApi {
  metrics: {
    getMeter(name: string, version?: string): OtelMeter
  }
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

/**
 * The recycler's stats() as OpenTelemetry metrics on the global MeterProvider (meter
 * `@fdrecycle/auto`): observable counters for the monotonic counts, observable up-down counters
 * for the current ones (idle, cooling, active, draining); one stats() snapshot per collection.
 * Names and units: docs/observability.md. `api` defaults to the app's @opentelemetry/api.
 * Returns an undo that removes the callback (the instruments stay registered, without values).
 */
export function installOpenTelemetry(recycler: SocketRecycler, api: OtelApi = loadFromApp<OtelApi>('@opentelemetry/api')): () => void {
  const meter = api.metrics.getMeter('@fdrecycle/auto', VERSION)
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
