import { describe, expect, it } from 'vitest'
import { SocketRecycler, type RecyclerStats } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { settle, until } from '../helpers.js'

const balanced = (s: RecyclerStats) => s.fdsCreated - s.fdsClosed === s.idle + s.active + s.draining

// What broke: in mode 'auto', a socket on the plain path (localAddress, a Unix path) counted in
// `active` and nowhere else, so fdsCreated - fdsClosed == idle + active + draining failed while
// one was open. Every fd behind a recycler's sockets now counts, pooled or plain.
describe.runIf(isLinux)('regression: stats() balance with plain-path sockets open', () => {
  it('fdsCreated - fdsClosed == idle + active + draining, during and after', async () => {
    await using srv = await tcpServer(lineEcho)
    const recycler = new SocketRecycler({ finDelayMs: 20 })
    const pooled = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const plain = recycler.createConnection({ host: '127.0.0.1', port: srv.port, localAddress: '127.0.0.1' })
    for (const s of [pooled, plain]) {
      s.on('error', () => {})
      s.resume()
    }
    await Promise.all([pooled, plain].map((s) => new Promise((resolve) => s.once('connect', resolve))))
    expect(plain.recycled).toBe(false)
    expect(recycler.stats()).toMatchObject({ active: 2, connections: 2 })
    expect(balanced(recycler.stats())).toBe(true)
    plain.destroy()
    await new Promise((resolve) => plain.once('close', resolve))
    expect(balanced(recycler.stats())).toBe(true)
    pooled.end('bye\n')
    await new Promise((resolve) => pooled.once('close', resolve))
    await settle()
    await until(() => recycler.stats().draining === 0, 'the drain settled')
    expect(recycler.stats()).toMatchObject({ active: 0, fdsCreated: 2, fdsClosed: 1, idle: 1 })
    expect(balanced(recycler.stats())).toBe(true)
    await recycler.close()
    expect(balanced(recycler.stats())).toBe(true)
  })
})
