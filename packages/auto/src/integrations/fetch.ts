// Global fetch() (Node's bundled undici) and the `undici` package read one global dispatcher at
// each request: globalThis[Symbol.for('undici.globalDispatcher.1')] for undici 6 and 7 (Node 20 to
// 24), '...2' for undici 8 (Node 26 bundles it; its fetch sets a default there at first use, and
// overwrites '.1' with a wrapper of it). When nothing is there yet, it becomes an undici 7 Agent
// whose connector is undiciConnector(), under both keys; a dispatcher the app sets, before or
// after, is its own (setGlobalDispatcher() replaces ours).
import { undiciConnector } from '@fdrecycle/http-adapter'
import { hookFile, inRange, packageVersion, type VersionRange } from '../hook.js'
import type { Integration } from '../integration.js'
import { localRequire } from '../local-require.js'

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
    if (g[kGlobalDispatcher] === undefined && g[kGlobalDispatcher2] === undefined) {
      const undici = localRequire('undici') as Undici
      ours = new undici.Agent({ connect: undiciConnector(recycler) })
      undici.setGlobalDispatcher(ours)
      // undici 8's key, with the attributes its setGlobalDispatcher() gives it (it redefines it).
      if (g[kGlobalDispatcher2] === undefined) {
        Object.defineProperty(globalThis, kGlobalDispatcher2, { value: ours, writable: true, enumerable: false, configurable: false })
      }
    } else {
      skip('a global undici dispatcher was already set; it is left alone')
    }
    // The app's own undici shares that dispatcher: it must be one that drives ours.
    // (its main file for `require`, lib/global.js below an ESM `import`: see hook.ts)
    const check = (exports: unknown, basedir: string): unknown => {
      const version = packageVersion(basedir)
      if (version === null || !inRange(version, UNDICI_RANGE)) {
        skip(`undici ${version ?? '(unknown version)'} in ${basedir} is outside the tested range ${UNDICI_RANGE.text}; its requests through the global dispatcher are not covered`)
      }
      return exports
    }
    const unhooks = [hookFile('undici/index.js', check), hookFile('undici/lib/global.js', check)]
    return () => {
      for (const unhook of unhooks) unhook()
      for (const key of [kGlobalDispatcher, kGlobalDispatcher2]) {
        if (ours !== undefined && g[key] === ours) g[key] = undefined
      }
    }
  },
}
