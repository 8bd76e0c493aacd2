import { once } from 'node:events'
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '../../src/index.js'
import { closeAfterClientFin, tcpServer } from '../../../../test/helpers/servers.js'
import { recyclingSupported } from '../../../../test/helpers/run-mode.js'

// What broke: a client that end()s its sockets without waiting for 'close', against a peer that
// closes only after the client's FIN (an echo-style server). While the release policy does not yet
// know the destination, every goodbye withholds our FIN for the full finDelayMs (1 s), and those
// fds were bounded by nothing (they are in use, not draining): at `ulimit -n 512`, 2 s of such a
// loop gave plain net 3,050 connections and no error, the recycler 2,121 and 1,806 EMFILE.
// maxDraining now bounds the withheld FINs together with the drains: a goodbye past it sends its FIN
// at once, as net's end() does, and the policy does not learn from that connection.
const N = 100
const MAX_DRAINING = 16

let recycler: SocketRecycler | undefined
afterEach(async () => {
  await recycler?.close()
  recycler = undefined
})

describe.runIf(recyclingSupported)('regression: withheld FINs count against maxDraining', () => {
  it(`${N} sockets end() at once against a peer that waits for our FIN: past the first ${MAX_DRAINING}, each sends its FIN at once`, async () => {
    await using srv = await tcpServer(closeAfterClientFin)
    recycler = new SocketRecycler({ maxDraining: MAX_DRAINING })
    const sockets: net.Socket[] = []
    for (let i = 0; i < N; i++) sockets.push(recycler.createConnection(srv.port, '127.0.0.1'))
    await Promise.all(sockets.map((s) => once(s, 'connect')))
    const closed = sockets.map((s) => once(s, 'close'))
    for (const s of sockets) {
      s.write('x')
      s.end()
    }
    // the withheld FINs never exceed the cap: each goodbye past it sends its FIN at once
    expect(recycler.stats().finDelaysShed).toBe(N - MAX_DRAINING)
    // the FINs sent at once bring the peer's close within a round trip; the first MAX_DRAINING wait
    await Promise.all(closed.slice(MAX_DRAINING))
    expect(recycler.stats().finSentFirst).toBe(N - MAX_DRAINING)
    expect(sockets.slice(0, MAX_DRAINING).every((s) => !s.closed)).toBe(true)
    await Promise.all(closed)
    const stats = recycler.stats()
    expect(stats).toMatchObject({ connections: N, finDelaysShed: N - MAX_DRAINING, finSentFirst: N, peerClosedFirst: 0, resetsSent: 0, drainsShed: 0 })
    // the fds were reused: the next connections take them from the pool
    const again = recycler.createConnection(srv.port, '127.0.0.1')
    await once(again, 'connect')
    expect(recycler.stats().reusedConnections).toBe(1)
    again.destroy()
  }, 30_000) // about 1 s: the last MAX_DRAINING goodbyes wait the full finDelayMs
})
