import { configureDefaultRecycler, defaultRecycler, isFdRecycleError, isRecyclingSupported, type SocketRecycler } from '@fdrecycle/core'
import { debuglog } from 'node:util'
import { AutoConfigError, readConfig, type AutoConfig } from './config.js'
import { drainAtExit } from './exit-drain.js'
import type { Integration, IntegrationName } from './integration.js'
import { integrations as allIntegrations } from './integrations/index.js'
import { installOpenTelemetry, installPromClient, installReport, isInstalled } from './observability/index.js'

const debug = debuglog('fdrecycle')

/** One install per process, across the ESM and CommonJS builds (and two installed copies). */
const kInstalled = Symbol.for('fdrecycle.auto.installed')

/** What install() did, as globalThis[Symbol.for('fdrecycle.auto.installed')] holds it. */
export interface InstallResult {
  /** the integrations installed (none when disabled, unsupported or passthrough) */
  readonly installed: readonly IntegrationName[]
  /** why nothing was installed, if nothing was */
  readonly reason?: 'disabled' | 'unsupported' | 'passthrough' | 'no clients'
  /** undoes every integration (tests) */
  readonly uninstall: () => void
}

export interface InstallOptions {
  env?: NodeJS.ProcessEnv
  integrations?: readonly Integration[]
}

/**
 * Reads FDRECYCLE_* (config.ts), configures the default recycler, and installs the integrations
 * that FDRECYCLE_CLIENTS selects. Throws AutoConfigError for a bad variable, before anything is
 * installed; an integration that fails to install undoes those before it and throws.
 */
export function install({ env = process.env, integrations = allIntegrations }: InstallOptions = {}): InstallResult {
  const config = readConfig(env)
  const none = (reason: InstallResult['reason']): InstallResult => {
    debug('auto: nothing installed (%s)', reason)
    return { installed: [], reason, uninstall: () => {} }
  }
  if (config.disabled) return none('disabled')
  const recycler = configuredRecycler(config)
  if (!recycler?.recycling) return none(config.options?.mode === 'passthrough' ? 'passthrough' : 'unsupported')
  const selected = integrations.filter((i) => config.clients.has(i.name))
  if (selected.length === 0) return none('no clients')
  const undo: (() => void)[] = [drainAtExit(recycler)]
  const installed: IntegrationName[] = []
  try {
    for (const integration of selected) {
      undo.push(integration.install({ recycler, skip: skipper(integration.name) }))
      installed.push(integration.name)
    }
  } catch (err) {
    for (const u of undo.reverse()) u()
    throw err
  }
  // Observability: the recycler's stats where the app has the library, or where asked for.
  try {
    if (isInstalled('@opentelemetry/api')) undo.push(installOpenTelemetry(recycler))
    if (isInstalled('prom-client')) undo.push(installPromClient(recycler))
    if (config.report) undo.push(installReport(recycler, config.report))
  } catch (err) {
    for (const u of undo.reverse()) u()
    throw err
  }
  debug('auto: installed %s', installed.join(', '))
  let undone = false
  const uninstall = (): void => {
    if (undone) return
    undone = true
    for (const u of undo.reverse()) u()
  }
  return { installed, uninstall }
}

/**
 * The process's default recycler with FDRECYCLE_OPTIONS, or null where nothing is to be patched;
 * the recycler's own errors (mode 'recycle' where unsupported) become AutoConfigError.
 */
function configuredRecycler(config: AutoConfig): SocketRecycler | null {
  try {
    if (config.options !== undefined) configureDefaultRecycler(config.options)
    // Only where this process can recycle: elsewhere 'auto' hands out plain sockets anyway, and
    // nothing is patched at all.
    if (config.options?.mode !== 'recycle' && (config.options?.mode === 'passthrough' || !isRecyclingSupported())) {
      return null
    }
    return defaultRecycler()
  } catch (err) {
    if (isFdRecycleError(err)) throw new AutoConfigError('FDRECYCLE_OPTIONS', err.message, { cause: err })
    throw err
  }
}

/** skip() of an IntegrationContext: one warning per distinct reason. */
function skipper(name: IntegrationName): (reason: string) => void {
  const said = new Set<string>()
  return (reason) => {
    if (said.has(reason)) return
    said.add(reason)
    process.emitWarning(`@fdrecycle/auto (${name}): ${reason}`, { code: 'FDRECYCLE_AUTO_SKIPPED' })
  }
}

/**
 * The preload's entry: install() once per process. A bad configuration ends the process here,
 * with one line on stderr and exit code 78 (EX_CONFIG), before the app's first line runs; an
 * integration that failed to install (a bug: its stack is printed) with 70 (EX_SOFTWARE).
 */
export function installOnce(): InstallResult {
  const g = globalThis as unknown as Record<symbol, InstallResult | undefined>
  const done = g[kInstalled]
  if (done) return done
  try {
    const result = install()
    g[kInstalled] = result
    return result
  } catch (err) {
    const config = err instanceof AutoConfigError
    const message = config ? err.message : `could not install: ${(err as Error)?.stack ?? String(err)}`
    process.stderr.write(`@fdrecycle/auto: ${message} (the app was not started: fix it, or set FDRECYCLE_DISABLE=1)\n`)
    process.exit(config ? 78 : 70)
  }
}
