import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { greetAndClose, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'

// What broke: a connection reset by the peer released its fd from inside libuv's read callback;
// the next connect started on the same handle before that callback returned, and libuv's
// uv__stream_io then ran uv__drain on the handle, stopping the new connect's POLLOUT: the connect
// hung forever. Released fds now wait one poll phase before they are lent again.
describe.runIf(isLinux)('regression: reuse inside the libuv callback that released the fd', () => {
  it('connections right after peer resets all complete', async () => {
    const recycler = new SocketRecycler()
    await using resetter = await tcpServer((s) => s.resetAndDestroy())
    await using greet = await tcpServer(greetAndClose)
    let completed = 0
    const one = (port: number) =>
      new Promise<void>((resolve) => {
        const socket = recycler.createConnection({ host: '127.0.0.1', port })
        socket.on('error', () => {})
        socket.resume()
        // The next connection starts inside this one's close, itself inside libuv's read callback.
        socket.on('close', () => {
          completed++
          resolve()
        })
      })
    const chains = Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 100; i++) await one(i % 2 === 0 ? resetter.port : greet.port)
    })
    await Promise.all(chains)
    expect(completed).toBe(800)
    expect(recycler.stats().reusedConnections).toBeGreaterThan(700)
    await recycler.close()
  })
})
