// The preload's configuration, from the environment only (an unchanged app has no other channel):
//   FDRECYCLE_DISABLE=1          nothing is installed
//   FDRECYCLE_CLIENTS=pg,http    only these integrations (default: every one whose client applies)
//   FDRECYCLE_OPTIONS={"finDelayMs":500}   the default recycler's options (core's RecyclerOptions)
//   FDRECYCLE_REPORT=stderr      a one-line summary of the recycler's stats at exit and on SIGUSR2
// Everything is read and validated before anything is installed: a bad value is one AutoConfigError
// naming the variable (and the option), and the process stops before the app runs.
import { InvalidOptionError, validateOptions, isFdRecycleError, type RecyclerOptions } from '@fdrecycle/core'
import type { IntegrationName } from './integration.js'

export const INTEGRATION_NAMES: readonly IntegrationName[] = ['pg', 'ioredis', 'redis', 'http', 'fetch']

export interface AutoConfig {
  /** FDRECYCLE_DISABLE=1: nothing is installed, nothing else is read */
  readonly disabled: boolean
  /** the integrations to install (FDRECYCLE_CLIENTS, default all) */
  readonly clients: ReadonlySet<IntegrationName>
  /** FDRECYCLE_OPTIONS, validated; undefined: the recycler's defaults */
  readonly options: RecyclerOptions | undefined
  /** FDRECYCLE_REPORT: where the one-line summary goes, if anywhere */
  readonly report: 'stderr' | undefined
}

/**
 * A bad FDRECYCLE_* variable: an InvalidOptionError (`ERR_FDRECYCLE_INVALID_OPTION`) whose
 * `option` and `variable` name the variable; the message says what to change, and for
 * FDRECYCLE_OPTIONS names the recycler option too (the core's error is its `cause`).
 */
export class AutoConfigError extends InvalidOptionError {
  readonly variable: string
  constructor(variable: string, message: string, options?: { cause?: unknown }) {
    super(variable, message)
    this.name = 'AutoConfigError'
    this.message = `${variable}: ${message}`
    this.variable = variable
    if (options && 'cause' in options) this.cause = options.cause
  }
}

/** Reads and validates the configuration; throws AutoConfigError on the first bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): AutoConfig {
  const disabled = parseDisable(env.FDRECYCLE_DISABLE)
  if (disabled) return { disabled, clients: new Set(), options: undefined, report: undefined }
  return {
    disabled,
    clients: parseClients(env.FDRECYCLE_CLIENTS),
    options: parseOptions(env.FDRECYCLE_OPTIONS),
    report: parseReport(env.FDRECYCLE_REPORT),
  }
}

function parseReport(value: string | undefined): 'stderr' | undefined {
  if (value === undefined || value === '') return undefined
  if (value === 'stderr') return value
  throw new AutoConfigError('FDRECYCLE_REPORT', `expected stderr (or unset); received '${value}'`)
}

/** `1` as core reads it (it then reports recycling unsupported, process-wide). */
function parseDisable(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0') return false
  if (value === '1') return true
  throw new AutoConfigError('FDRECYCLE_DISABLE', `expected 1 to disable, or 0 (or unset); received '${value}'`)
}

function parseClients(value: string | undefined): ReadonlySet<IntegrationName> {
  if (value === undefined || value.trim() === '') return new Set(INTEGRATION_NAMES)
  const clients = new Set<IntegrationName>()
  for (const raw of value.split(',')) {
    const name = raw.trim()
    if (name === '') continue
    if (!(INTEGRATION_NAMES as readonly string[]).includes(name)) {
      throw new AutoConfigError('FDRECYCLE_CLIENTS', `unknown client '${name}'; expected a comma-separated list of ${INTEGRATION_NAMES.join(', ')}`)
    }
    clients.add(name as IntegrationName)
  }
  return clients
}

function parseOptions(value: string | undefined): RecyclerOptions | undefined {
  if (value === undefined || value.trim() === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (err) {
    throw new AutoConfigError('FDRECYCLE_OPTIONS', `not valid JSON (${(err as Error).message}); expected an object of SocketRecycler options, e.g. {"finDelayMs":500}`, { cause: err })
  }
  try {
    validateOptions(parsed)
  } catch (err) {
    if (isFdRecycleError(err)) throw new AutoConfigError('FDRECYCLE_OPTIONS', err.message, { cause: err })
    throw err
  }
  return parsed as RecyclerOptions
}
