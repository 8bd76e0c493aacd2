import dns from 'node:dns'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { until } from '../helpers.js'

// What broke: a socket destroyed while libuv still owed it its connect callback handed the fd to
// the connect catcher a loop turn later; the callback came in between, to the destroyed socket,
// which net's afterConnect ignores; the catcher then waited for it for ever (the fd stuck in
// 'draining', close() waiting closeTimeoutMs). The catcher now takes the handle at once.
describe.runIf(isLinux)('regression: destroy while the connect is in flight', () => {
  it('the fd is settled and lent again', async () => {
    const recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    // The lookup answers in one check phase; the connect is issued right after it (nextTick) and
    // the destroy comes in the next immediate of the same phase: before libuv polls the connect's
    // completion (on loopback the kernel has completed it already).
    const lookup = ((host: string, options: dns.LookupOptions, cb: (e: null, a: string, f: number) => void) =>
      setImmediate(() => cb(null, '127.0.0.1', 4))) as unknown as typeof dns.lookup
    let inFlight = 0
    for (let i = 0; i < 20; i++) {
      const s = recycler.createConnection({ host: 'example.invalid', port: srv.port, lookup, autoSelectFamily: false })
      s.on('error', () => {})
      setImmediate(() => {
        if (s.connecting && (s as unknown as { _handle: unknown })._handle) inFlight++
        s.destroy()
      })
      await new Promise((resolve) => s.once('close', resolve))
    }
    expect(inFlight).toBe(20)
    await until(() => recycler.stats().draining === 0 && recycler.stats().active === 0, 'every fd settled', 5000)
    // each aborted connect was dissolved (an RST: the kernel had it established) and lent again
    expect(recycler.stats().resetsSent).toBe(20)
    expect(recycler.stats().fdsCreated).toBeLessThan(5)
    await recycler.close()
  })
})
