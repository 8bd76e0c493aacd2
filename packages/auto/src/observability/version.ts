/** @fdrecycle/auto's version, the instrumentation scope's version of its OpenTelemetry meter. */
export const VERSION = '0.1.0'
