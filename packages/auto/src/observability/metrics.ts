import type { RecyclerStats } from '@fdrecycle/core'

/** The numbers of RecyclerStats (everything but `mode`). */
export type StatName = Exclude<keyof RecyclerStats, 'mode'>

/**
 * One metric per number of `recycler.stats()`, named in OpenTelemetry's semantic-conventions style
 * (`fdrecycle.<noun>.<qualifier>`, units in UCUM braces); Prometheus names are derived from these
 * (`prometheusName`). `counter`: monotonic since the recycler was made; `gauge`: a current count.
 */
export interface MetricRow {
  readonly stat: StatName
  readonly name: string
  readonly kind: 'counter' | 'gauge'
  readonly unit: string
  readonly description: string
}

const row = (stat: StatName, name: string, kind: MetricRow['kind'], unit: string, description: string): MetricRow =>
  Object.freeze({ stat, name, kind, unit, description })

export const METRICS: readonly MetricRow[] = Object.freeze([
  row('connections', 'fdrecycle.connections', 'counter', '{connection}', 'Connections opened through the recycler (connect() calls that took an fd).'),
  row('reusedConnections', 'fdrecycle.connections.reused', 'counter', '{connection}', 'Connections served by an fd that had served one before.'),
  row('peerClosedFirst', 'fdrecycle.connections.peer_closed_first', 'counter', '{connection}', 'Connections whose peer closed first while our FIN was withheld: no TIME_WAIT on this side.'),
  row('finSentFirst', 'fdrecycle.connections.fin_sent_first', 'counter', '{connection}', 'Connections where our FIN went first (finDelayMs elapsed or 0): TIME_WAIT on this side.'),
  row('fdsCreated', 'fdrecycle.fds.created', 'counter', '{fd}', 'File descriptors (socket handles) the recycler has created.'),
  row('fdsClosed', 'fdrecycle.fds.closed', 'counter', '{fd}', 'File descriptors the recycler has closed.'),
  row('recycled', 'fdrecycle.fds.recycled', 'counter', '{fd}', 'File descriptors returned to the pool after a connection.'),
  row('resetsSent', 'fdrecycle.resets.sent', 'counter', '{reset}', 'Connections ended with an RST (resetAndDestroy, the reset policy, connections that broke).'),
  row('drainTimeouts', 'fdrecycle.drains.timeouts', 'counter', '{drain}', 'Peers that sent no EOF within drainTimeoutMs.'),
  row('drainsShed', 'fdrecycle.drains.shed', 'counter', '{drain}', 'Drains closed early because maxDraining was reached.'),
  row('finDelaysShed', 'fdrecycle.fin_delays.shed', 'counter', '{connection}', 'Withheld FINs sent at once because maxDraining was reached.'),
  row('discardedBytes', 'fdrecycle.discarded', 'counter', 'By', 'Bytes that arrived after their socket\'s user had let go, read and dropped.'),
  row('idle', 'fdrecycle.fds.idle', 'gauge', '{fd}', 'Idle file descriptors in the pools, cooling ones included.'),
  row('cooling', 'fdrecycle.fds.cooling', 'gauge', '{fd}', 'Idle file descriptors released in this or the last event-loop turn, lendable after the next poll phase.'),
  row('active', 'fdrecycle.fds.active', 'gauge', '{fd}', 'File descriptors in use by a socket.'),
  row('draining', 'fdrecycle.fds.draining', 'gauge', '{fd}', 'File descriptors whose user is gone and whose peer has not closed yet.'),
])

/**
 * The Prometheus name of a row, as OpenTelemetry's Prometheus exporter would make it: dots to
 * underscores, the unit as a suffix where it is one (`By`: `_bytes`), `_total` on counters.
 */
export function prometheusName(row: MetricRow): string {
  const base = row.name.replace(/\./g, '_') + (row.unit === 'By' ? '_bytes' : '')
  return row.kind === 'counter' ? `${base}_total` : base
}
