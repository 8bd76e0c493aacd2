import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { neverClose, tcpServer } from '../../../../test/helpers/servers.js'
import { fdCount, isLinux } from '../../../../test/helpers/system.js'
import { once, settle, until } from '../helpers.js'

// What broke: close() did not turn away connects waiting for an fd (maxSockets reached). When
// close() then closed the draining fd, the freed slot went to the waiter: its socket connected
// on a closed recycler, after close() had resolved, on an fd nobody tracked any more.
describe.runIf(isLinux)('regression: close() while a connect waits for an fd', () => {
  it('the waiting connect fails with ERR_FDRECYCLE_CLOSED and every fd is closed', async () => {
    await using srv = await tcpServer(neverClose)
    const baseline = fdCount()
    const recycler = new SocketRecycler({ maxSockets: 1, finDelayMs: 10, drainTimeoutMs: 60_000, closeTimeoutMs: 200 })
    const a = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await once(a, 'connect')
    a.destroy() // the fd drains: the peer never closes
    await until(() => recycler.stats().draining === 1, 'the first fd draining')

    const b = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => b.once('error', resolve))
    let connected = false
    b.on('connect', () => (connected = true))
    await settle()
    expect(b.connecting).toBe(true)

    const closing = recycler.close()
    const err = await failed
    expect(err.code).toBe('ERR_FDRECYCLE_CLOSED')
    await closing
    await settle()
    expect(connected).toBe(false)
    expect(b.destroyed).toBe(true)
    const st = recycler.stats()
    expect(st.fdsCreated).toBe(st.fdsClosed)
    expect(st.active + st.draining + st.idle).toBe(0)
    // the server still holds its side of the first connection (it never closes)
    await until(() => fdCount() <= baseline + srv.sockets.filter((s) => !s.destroyed).length, 'fd count back at baseline')
  })
})
