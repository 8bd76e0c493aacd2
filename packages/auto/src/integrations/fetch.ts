// Global fetch() (Node's bundled undici) and the `undici` package read one global dispatcher at
// each request: globalThis[Symbol.for('undici.globalDispatcher.1')] for undici 6 and 7 (Node 20 to
// 24), '...2' for undici 8 (Node 26 bundles it; it sets a default there when it loads, and
// overwrites '.1' with a wrapper of it). When nothing is there yet, or only Node's own default, it
// becomes an undici 7 Agent whose connector is undiciConnector(), under both keys; a dispatcher the
// app sets, before or after, is its own (setGlobalDispatcher() replaces ours).
//
// Node's own default appears early and with no intent of the app: its bundled undici sets it when
// it loads, which `new Response()` does (pg's stream.js, at require), and so does an ESM `import`
// of node:http on Node 22+ (its WebSocket getter). It is told apart by its class: an `Agent` (or
// undici 8's `Dispatcher1Wrapper`) that is no class of an undici package loaded here; only Node's
// bundled copy makes such instances.
import { sep } from 'node:path'
import { hookFile, inRange, packageVersion, type VersionRange } from '../hook.js'
import type { Integration } from '../integration.js'
import { localRequire } from '../local-require.js'
import { httpAdapter } from './http-adapter.js'

export const UNDICI_RANGE: VersionRange = { min: [6, 0, 0], maxMajor: 7, text: '>=6.0.0 <8' }

export const kGlobalDispatcher = Symbol.for('undici.globalDispatcher.1')
export const kGlobalDispatcher2 = Symbol.for('undici.globalDispatcher.2')

interface Undici {
  Agent: new (options: { connect: unknown }) => object
  setGlobalDispatcher(dispatcher: object): void
}

export const fetch: Integration = {
  name: 'fetch',
  install({ recycler, skip }) {
    const g = globalThis as unknown as Record<symbol, unknown>
    let ours: object | undefined
    const current = g[kGlobalDispatcher2] ?? g[kGlobalDispatcher]
    if (current === undefined || isNodesDefault(current)) {
      const undici = localRequire('undici') as Undici
      ours = new undici.Agent({ connect: httpAdapter().undiciConnector(recycler) })
      undici.setGlobalDispatcher(ours)
      // undici 8's key, with the attributes its setGlobalDispatcher() gives it (so it can redefine it).
      Object.defineProperty(globalThis, kGlobalDispatcher2, { value: ours, writable: true, enumerable: false, configurable: false })
    } else {
      skip(`a global dispatcher (${describe(current)}) was set before @fdrecycle/auto ran; it is left alone`)
    }
    // The app's own undici shares that dispatcher: it must be one that drives ours.
    // (its main file for `require`, lib/global.js below an ESM `import`: see hook.ts)
    const check = (moduleExports: unknown, basedir: string): unknown => {
      const version = packageVersion(basedir)
      if (version === null || !inRange(version, UNDICI_RANGE)) {
        skip(`undici ${version ?? '(unknown version)'} in ${basedir} is outside the tested range ${UNDICI_RANGE.text}; its requests through the global dispatcher are not covered`)
      }
      return moduleExports
    }
    const unhooks = [hookFile('undici', check), hookFile('undici/lib/global', check)]
    return () => {
      for (const unhook of unhooks) unhook()
      for (const key of [kGlobalDispatcher, kGlobalDispatcher2]) {
        if (ours !== undefined && g[key] === ours) g[key] = undefined
      }
    }
  },
}

/** Whether `dispatcher` is Node's own default (see above). */
export function isNodesDefault(dispatcher: unknown): boolean {
  const ctor = (dispatcher as { constructor?: unknown } | null)?.constructor
  if (typeof ctor !== 'function' || (ctor.name !== 'Agent' && ctor.name !== 'Dispatcher1Wrapper')) return false
  return !undiciPackageClasses().has(ctor)
}

/** The functions exported by the files of every undici package in require.cache. */
function undiciPackageClasses(): Set<unknown> {
  const classes = new Set<unknown>()
  const marker = `${sep}node_modules${sep}undici${sep}`
  for (const [filename, module] of Object.entries(localRequire.cache)) {
    if (!module || !filename.includes(marker)) continue
    const exported = module.exports as unknown
    if (typeof exported === 'function') classes.add(exported)
    else if (exported && typeof exported === 'object') {
      for (const value of Object.values(exported)) if (typeof value === 'function') classes.add(value)
    }
  }
  return classes
}

function describe(value: unknown): string {
  const name = (value as { constructor?: { name?: unknown } } | null)?.constructor?.name
  return typeof name === 'string' && name !== '' ? `a ${name}` : typeof value
}
