import type { SocketRecycler } from '@fdrecycle/core'
import { loadFromApp } from './is-installed.js'
import { METRICS, prometheusName } from './metrics.js'

/** The part of prom-client used here (14 and 15). */
interface PromMetric {
  set?(value: number): void
  reset(): void
  inc(value: number): void
}
interface PromRegistry {
  getSingleMetric(name: string): unknown
  removeSingleMetric(name: string): void
}
interface PromClient {
  register: PromRegistry
  Counter: new (config: { name: string; help: string; registers: PromRegistry[]; collect(this: PromMetric): void }) => PromMetric
  Gauge: new (config: { name: string; help: string; registers: PromRegistry[]; collect(this: PromMetric): void }) => PromMetric
}

/**
 * The recycler's stats() as Prometheus metrics on prom-client's default registry (`register`):
 * a Counter per monotonic count (`fdrecycle_connections_total`, ...) and a Gauge per current one
 * (`fdrecycle_fds_idle`, ...), each read from stats() when the registry is scraped. Names:
 * docs/observability.md. `client` defaults to the app's prom-client (its default registry is
 * per copy). A name already registered (a second install) is left to its owner: only the
 * metrics this call registered are removed by the returned undo.
 */
export function installPromClient(recycler: SocketRecycler, client: PromClient = loadFromApp<PromClient>('prom-client')): () => void {
  const registry = client.register
  const mine: string[] = []
  for (const row of METRICS) {
    const name = prometheusName(row)
    if (registry.getSingleMetric(name) !== undefined) continue
    const help = `${row.description} (${row.unit})`
    if (row.kind === 'counter') {
      // A counter that mirrors a count kept elsewhere: reset and set to it at each scrape.
      new client.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(recycler.stats()[row.stat]) } })
    } else {
      new client.Gauge({ name, help, registers: [registry], collect() { this.set!(recycler.stats()[row.stat]) } })
    }
    mine.push(name)
  }
  return () => {
    for (const name of mine.splice(0)) registry.removeSingleMetric(name)
  }
}
