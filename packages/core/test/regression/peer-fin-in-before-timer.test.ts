import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { tcpState } from '../../src/ffi/syscalls.js'
import { TcpState } from '../../src/ffi/tcp-info.js'
import { fdOf, isLinux, timeWaitCount } from '../../../../test/helpers/system.js'
import { until } from '../helpers.js'

// What broke: with a busy event loop, finDelayMs could expire in the same loop turn as the peer's
// EOF became readable; Node runs expired timers before I/O, so our FIN "went first" and was counted
// (and learnt by the adaptive policy) as such although the kernel already held the peer's FIN
// (CLOSE_WAIT): a goodbye peer such as nginx looked slow under load. The timer now asks the kernel.
const FIN_DELAY_MS = 50

describe.runIf(isLinux)('regression: a peer FIN already in the kernel when finDelayMs elapses', () => {
  let stop: (() => void) | undefined
  afterEach(() => stop?.())

  it('counts as the peer closing first, and leaves no client TIME_WAIT', async () => {
    // the server in another process: it must close while this one is busy
    const child = spawn(process.execPath, ['-e', `
      const net = require('node:net')
      const server = net.createServer({ allowHalfOpen: true }, (s) => s.on('data', () => s.end()))
      server.listen(0, '127.0.0.1', () => console.log(server.address().port))
    `], { stdio: ['ignore', 'pipe', 'inherit'] })
    stop = () => child.kill()
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer]
    const port = Number(chunk.toString().trim())
    const recycler = new SocketRecycler({ finDelayMs: FIN_DELAY_MS })
    try {
      const socket = recycler.createConnection(port, '127.0.0.1')
      await once(socket, 'connect')
      const clientPort = socket.localPort
      const fd = fdOf(socket)
      const closed = once(socket, 'close')
      socket.resume()
      const t0 = performance.now()
      socket.end('bye') // our FIN withheld for FIN_DELAY_MS; the server closes on reading it
      // A busy loop, until both have happened: finDelayMs expired and the peer's FIN is in.
      while (performance.now() - t0 < FIN_DELAY_MS + 10 || tcpState(fd) !== TcpState.CLOSE_WAIT) {
        if (performance.now() - t0 > 10_000) throw new Error('the peer FIN never came')
      }
      await closed
      await until(() => recycler.stats().recycled === 1, 'the fd released')
      expect(recycler.stats()).toMatchObject({ peerClosedFirst: 1, finSentFirst: 0 })
      expect(timeWaitCount(port, 'client', [clientPort])).toBe(0)
    } finally {
      await recycler.close()
    }
  })
})
