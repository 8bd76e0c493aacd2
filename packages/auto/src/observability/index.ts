// The observability backends, each installed by @fdrecycle/auto's entry when the app has the
// library (isInstalled) or FDRECYCLE_REPORT asks for it; each returns an undo.
export { isInstalled, loadFromApp } from './is-installed.js'
export { METRICS, prometheusName, type MetricRow, type StatName } from './metrics.js'
export { installOpenTelemetry, type OpenTelemetryOptions, type OtelApi } from './opentelemetry.js'
export { installPromClient } from './prom-client.js'
export { installReport, summaryLine, type ReportTarget } from './report.js'
export { VERSION } from './version.js'
