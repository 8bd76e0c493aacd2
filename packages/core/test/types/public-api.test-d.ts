// Compiled by tsc (test/unit/public-types.test.ts runs it), never executed: the public API's types
// as a user of the package meets them. `@ts-expect-error` lines must stay errors.
import net from 'node:net'
import {
  RecycledSocket, SocketRecycler, configureDefaultRecycler, defaultRecycler, isFdRecycleError, observeWrites, RecyclerClosedError,
  type RecycledConnectOpts, type RecyclerStats,
} from '../../src/index.js'

const recycler = new SocketRecycler({ finDelayMs: 500 })

// the documented per-socket option type-checks
const a: RecycledSocket = recycler.createConnection({ host: 'db.internal', port: 5432, finDelayMs: 0 })
const opts: RecycledConnectOpts = { host: '127.0.0.1', port: 6379, finDelayMs: 250, noDelay: true }
recycler.createConnection(opts, () => {})
recycler.createConnection(5432, 'db.internal', () => {})
recycler.createConnection('/run/app.sock')
recycler.createSocket({ allowHalfOpen: true, finDelayMs: 0 })
// @ts-expect-error finDelayMs is a number
recycler.createConnection({ host: 'h', port: 1, finDelayMs: '0' })

// RecycledSocket#connect keeps net.Socket's overloads
const s = recycler.createSocket()
s.connect(5432, 'db.internal')
s.connect(5432, () => {})
s.connect({ port: 5432, host: 'db.internal', finDelayMs: 0 }, () => {})
s.connect('/run/app.sock')
// @ts-expect-error no overload takes a boolean
s.connect(true)
const asNet: net.Socket = s
void asNet
const finDelay: number | undefined = a.finDelayMs
void finDelay

// the socket-facing internals are not on the public type
// @ts-expect-error internal
recycler.acquireNow(4)
// @ts-expect-error internal
recycler.tenantLeft
// @ts-expect-error internal
recycler.checkout
// @ts-expect-error internal
recycler.giveBack

const stats: RecyclerStats = recycler.stats()
const n: number = stats.peerClosedFirst + stats.draining
void n
const d: SocketRecycler = defaultRecycler()
configureDefaultRecycler({ finDelayMs: 500 })
// @ts-expect-error an unknown option
configureDefaultRecycler({ finDelay: 500 })
void d
const e: unknown = new RecyclerClosedError()
if (isFdRecycleError(e)) {
  const code: string = e.code
  void code
}
observeWrites(s, (chunk: unknown) => void chunk)
void recycler.close()
