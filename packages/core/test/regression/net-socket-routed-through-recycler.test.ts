import net from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { isLinux } from '../../../../test/helpers/system.js'

// What broke: with `net.Socket` routed through a recycler (as the conformance runner's preload does,
// and as an instrumentation may), a connect with a bad port recursed until the stack overflowed
// (RangeError in Node's test-net-connect-options-port): the check that asks net itself for its
// error made its throwaway socket with `new net.Socket()`, which was the recycler again.
describe.runIf(isLinux)('regression: bad connect arguments with net.Socket routed through the recycler', () => {
  const recycler = new SocketRecycler()
  const original = net.Socket
  afterAll(async () => {
    ;(net as { Socket: typeof net.Socket }).Socket = original
    await recycler.close()
  })

  it("throws net's own error, once", () => {
    ;(net as { Socket: unknown }).Socket = function RoutedSocket(options?: net.SocketConstructorOpts) {
      return recycler.createSocket(options)
    }
    let error: NodeJS.ErrnoException | undefined
    try {
      recycler.createConnection({ port: -1, host: '127.0.0.1' }).destroy()
    } catch (e) {
      error = e as NodeJS.ErrnoException
    } finally {
      ;(net as { Socket: typeof net.Socket }).Socket = original
    }
    expect(error?.code).toBe('ERR_SOCKET_BAD_PORT')
    expect(recycler.stats()).toMatchObject({ connections: 0, active: 0 })
  })
})
