// ioredis: every Redis (also each node of a Cluster, and the clients a SentinelConnector asks the
// sentinels with) whose options have no `Connector` gets recycledConnector()'s. The constructor
// picks its connector right after parseOptions() merged the defaults (DEFAULT_REDIS_OPTIONS): the
// patched parseOptions sets `Connector` there, unless the app gave one or the config has
// `sentinels`, which keeps ioredis's SentinelConnector (it dials the master with net's own
// createConnection, which no option reaches: that connection stays plain).
import { recycledConnector } from '@fdrecycle/redis-adapter'
import { hookFile, inRange, packageVersion, type VersionRange } from '../hook.js'
import type { Integration } from '../integration.js'

export const IOREDIS_RANGE: VersionRange = { min: [5, 0, 0], maxMajor: 6, text: '>=5.0.0 <7' }

const kOriginal = Symbol.for('fdrecycle.auto.ioredisParseOptions')

interface RedisPrototype {
  parseOptions(...args: unknown[]): void
  options?: { Connector?: unknown; sentinels?: unknown }
  [kOriginal]?: RedisPrototype['parseOptions']
}

export const ioredis: Integration = {
  name: 'ioredis',
  install({ recycler, skip }) {
    const Connector = recycledConnector(recycler)
    const patched: RedisPrototype[] = []
    const unhook = hookFile('ioredis/built/Redis.js', (exports, basedir) => {
      const version = packageVersion(basedir)
      if (version === null || !inRange(version, IOREDIS_RANGE)) {
        skip(`ioredis ${version ?? '(unknown version)'} in ${basedir} is outside the tested range ${IOREDIS_RANGE.text}; its connections stay plain`)
        return exports
      }
      const proto = (exports as { default?: { prototype?: RedisPrototype } }).default?.prototype
      if (!proto || typeof proto.parseOptions !== 'function' || proto[kOriginal]) return exports
      const original = proto.parseOptions
      // In place: the class is shared by every importer, also one that loaded it before us.
      proto[kOriginal] = original
      proto.parseOptions = function parseOptions(this: RedisPrototype, ...args: unknown[]) {
        original.apply(this, args)
        const options = this.options
        if (options && !options.Connector && !options.sentinels) options.Connector = Connector
      }
      patched.push(proto)
      return exports
    })
    return () => {
      unhook()
      for (const proto of patched) {
        proto.parseOptions = proto[kOriginal]!
        delete proto[kOriginal]
      }
    }
  },
}
