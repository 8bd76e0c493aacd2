// ioredis: every Redis (also each node of a Cluster) whose options have no `Connector` gets
// recycledConnector()'s. The constructor picks its connector right after parseOptions() merged
// the defaults (DEFAULT_REDIS_OPTIONS): the patched parseOptions sets `Connector` there, unless
// the app gave one.
//
// A config with `sentinels` is left plain, whole: it keeps ioredis's SentinelConnector, which
// dials the master with net's own createConnection (no option reaches it), and the clients that
// connector asks the sentinels with (connectToSentinel) stay plain too: the adapter's goodbye is
// QUIT, which Redis 7.0's sentinel answers with "unknown command" instead of closing, so recycling
// them would only hold our FIN back for quitTimeoutMs and still leave the TIME_WAIT here.
import { recycledConnector } from '@fdrecycle/redis-adapter'
import { hookFile, inRange, packageVersion, type VersionRange } from '../hook.js'
import type { Integration, IntegrationContext } from '../integration.js'

export const IOREDIS_RANGE: VersionRange = { min: [5, 0, 0], maxMajor: 6, text: '>=5.0.0 <7' }

const kOriginal = Symbol.for('fdrecycle.auto.ioredisOriginal')

type Method = (this: unknown, ...args: unknown[]) => unknown
type Patchable = Record<string, Method> & { [kOriginal]?: Record<string, Method> }

/** Replaces proto[name] with wrap(original), once; returns the undo. */
function wrapMethod(proto: Patchable, name: string, wrap: (original: Method) => Method): (() => void) | null {
  const original = proto[name]
  if (typeof original !== 'function' || proto[kOriginal]?.[name]) return null
  proto[kOriginal] = { ...proto[kOriginal], [name]: original }
  proto[name] = wrap(original)
  return () => {
    proto[name] = original
    delete proto[kOriginal]![name]
  }
}

export const ioredis: Integration = {
  name: 'ioredis',
  install({ recycler, skip }) {
    const Connector = recycledConnector(recycler)
    const undo: (() => void)[] = []
    /** >0 while a SentinelConnector makes one of its own clients (synchronously, in connectToSentinel) */
    let sentinelClients = 0
    const supported = (basedir: string): boolean => inIoredisRange(basedir, skip)

    undo.push(hookFile('ioredis/built/Redis', (moduleExports, basedir) => {
      const proto = (moduleExports as { default?: { prototype?: Patchable } }).default?.prototype
      if (!proto || !supported(basedir)) return moduleExports
      const u = wrapMethod(proto, 'parseOptions', (original) => function parseOptions(this: unknown, ...args: unknown[]) {
        original.apply(this, args)
        const options = (this as { options?: { Connector?: unknown; sentinels?: unknown } }).options
        if (options && !options.Connector && !options.sentinels && sentinelClients === 0) options.Connector = Connector
      })
      if (u) undo.push(u)
      // In place: the class is shared by every importer, also one that loaded it before us.
      return moduleExports
    }))
    undo.push(hookFile('ioredis/built/connectors/SentinelConnector', (moduleExports, basedir) => {
      const proto = (moduleExports as { default?: { prototype?: Patchable } }).default?.prototype
      if (!proto || !supported(basedir)) return moduleExports
      const u = wrapMethod(proto, 'connectToSentinel', (original) => function connectToSentinel(this: unknown, ...args: unknown[]) {
        sentinelClients++
        try {
          return original.apply(this, args)
        } finally {
          sentinelClients--
        }
      })
      if (u) undo.push(u)
      return moduleExports
    }))
    return () => {
      for (const u of undo.reverse()) u()
    }
  },
}

function inIoredisRange(basedir: string, skip: IntegrationContext['skip']): boolean {
  const version = packageVersion(basedir)
  if (version !== null && inRange(version, IOREDIS_RANGE)) return true
  skip(`ioredis ${version ?? '(unknown version)'} in ${basedir} is outside the tested range ${IOREDIS_RANGE.text}; its connections stay plain`)
  return false
}
