// pg: every Client (also those a Pool, an ORM or a query builder makes) whose config has no
// `stream` gets pgStream()'s recycled socket. pg (8.9 to 8.x) makes its socket in Connection's
// constructor, `config.stream || new net.Socket()` (getStream() of pg/lib/stream.js since 8.12),
// from the `stream` the Client passed on; client.js takes Connection from pg/lib/connection.js at
// load, so that file's export is the one place that sees every connection.
import { pgStream } from '@fdrecycle/pg-adapter'
import { hookFile, inRange, packageVersion, type VersionRange } from '../hook.js'
import type { Integration } from '../integration.js'

export const PG_RANGE: VersionRange = { min: [8, 9, 0], maxMajor: 8, text: '>=8.9.0 <9' }

/** Marks the Connection subclass of this integration (for tests, and never to wrap twice). */
export const kRecycledConnection = Symbol.for('fdrecycle.auto.pgConnection')

type ConnectionClass = new (config?: Record<string, unknown>) => object

export const pg: Integration = {
  name: 'pg',
  install({ recycler, skip }) {
    const stream = pgStream(recycler)
    return hookFile('pg/lib/connection', (moduleExports, basedir, loadedBefore) => {
      const version = packageVersion(basedir)
      if (version === null || !inRange(version, PG_RANGE)) {
        skip(`pg ${version ?? '(unknown version)'} in ${basedir} is outside the tested range ${PG_RANGE.text}; its connections stay plain`)
        return moduleExports
      }
      if (loadedBefore) {
        skip(`pg in ${basedir} was loaded before @fdrecycle/auto; its connections stay plain (preload @fdrecycle/auto first)`)
        return moduleExports
      }
      const Connection = moduleExports as ConnectionClass & { [kRecycledConnection]?: true }
      if (typeof Connection !== 'function' || Connection[kRecycledConnection]) return moduleExports
      const Recycled = class Connection extends (moduleExports as ConnectionClass) {
        static readonly [kRecycledConnection] = true
        constructor(config?: Record<string, unknown>) {
          // A stream the app (or its library) set is its own: left alone.
          super(config?.stream ? config : { ...config, stream })
        }
      }
      return Recycled
    })
  },
}
