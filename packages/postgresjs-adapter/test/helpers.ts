import type { SocketRecycler } from '@fdrecycle/core'
import { fdOf, socketInode } from '../../../test/helpers/system.js'
import { postgresSocket, type PostgresSocket, type PostgresSocketFactory } from '@fdrecycle/postgresjs-adapter'

// The servers, ss, polling and error-shape helpers of the pg adapter's suite serve this one unchanged.
export { clientTimeWaits, countClientTimeWaits, errorShape, released, serverTimeWaits, servers, until } from '../../pg-adapter/test/helpers.js'
export { fdCount, openSockets, socketsSince, fdOf, socketInode } from '../../../test/helpers/system.js'
export { expectRecycled, recyclingSupported } from '../../../test/helpers/run-mode.js'

/** postgresSocket(recycler), keeping every socket it hands out (postgres.js does not expose them). */
export function trackedSocket(recycler?: SocketRecycler): { socket: PostgresSocketFactory; made: PostgresSocket[]; inodes: Set<string> } {
  const factory = postgresSocket(recycler)
  const made: PostgresSocket[] = []
  /** the kernel sockets behind them, read at 'connect' (a short idle_timeout may close one soon after) */
  const inodes = new Set<string>()
  return {
    made,
    inodes,
    socket: (options) => {
      const s = factory(options)
      made.push(s)
      s.once('connect', () => inodes.add(socketInode(fdOf(s))))
      return s
    },
  }
}

/** "localPort->remotePort" of a connected socket: its 4-tuple on loopback. */
export function tupleOfSocket(socket: PostgresSocket): string {
  return `${socket.localPort}->${socket.remotePort}`
}
