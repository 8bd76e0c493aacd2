import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { settle } from '../helpers.js'

// What broke: before 'connect', a reused fd reported the previous tenant's local address and port
// (localPort, localAddress, address()), where net reports undefined and {}.
describe.runIf(isLinux)('regression: no local address before the connect', () => {
  function before(make: (o: net.NetConnectOpts) => net.Socket, port: number): Promise<unknown[]> {
    const s = make({ host: '127.0.0.1', port })
    const seen: unknown[] = [s.localPort, s.localAddress, s.localFamily, s.address()]
    return new Promise((resolve) => s.once('connect', () => {
      seen.push(typeof s.localPort, (s.address() as net.AddressInfo).address)
      s.end('bye\n')
      s.resume()
      s.once('close', () => resolve(seen))
    }))
  }

  it('undefined and {} until the connect, as net; the connection\'s own address after it', async () => {
    await using srv = await tcpServer(lineEcho)
    const plain = await before((o) => net.createConnection(o), srv.port)
    expect(plain).toEqual([undefined, undefined, undefined, {}, 'number', '127.0.0.1'])
    const recycler = new SocketRecycler({ finDelayMs: 20 })
    expect(await before((o) => recycler.createConnection(o), srv.port)).toEqual(plain) // a new fd
    await settle()
    expect(await before((o) => recycler.createConnection(o), srv.port)).toEqual(plain) // a reused fd
    expect(recycler.stats().reusedConnections).toBe(1)
    await recycler.close()
  })
})
