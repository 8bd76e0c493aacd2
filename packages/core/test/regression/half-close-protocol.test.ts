import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { tcpServer, type Behaviour } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { exchange, settle } from '../helpers.js'

/** Answers once the request is complete, i.e. at the client's EOF (whois-style half-close). */
const answerAtEof: Behaviour = (socket) => {
  let request = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (request += d))
  socket.on('end', () => socket.end(`echo:${request}`))
}

// A peer that answers only after our FIN waits out finDelayMs (the FIN is withheld for it to
// close first): such a protocol sets finDelayMs: 0 on its sockets; the recycler's stays.
describe.runIf(isLinux)('a half-close protocol with a per-socket finDelayMs', () => {
  it('finDelayMs: 0 on the socket sends the FIN at end(): the answer comes, the fd is reused', async () => {
    // a recycler-wide delay far beyond the test's timeout: only the socket's own 0 can pass
    const recycler = new SocketRecycler({ finDelayMs: 600_000 })
    await using srv = await tcpServer(answerAtEof)
    for (let i = 0; i < 3; i++) {
      const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port, finDelayMs: 0 }), `q${i}`, true)
      expect(r.data).toBe(`echo:q${i}`)
      expect(r.error).toBeNull()
      await settle()
    }
    const st = recycler.stats()
    expect(st.finSentFirst).toBe(3)
    expect(st.reusedConnections).toBe(2)
    await recycler.close()
  })

  it('a wrong per-socket finDelayMs is a typed error naming it, before any fd is taken', () => {
    const recycler = new SocketRecycler()
    for (const bad of [-1, 1.5, '0', null]) {
      expect(() => recycler.createConnection({ host: '127.0.0.1', port: 1, finDelayMs: bad } as never)).toThrow(
        expect.objectContaining({ code: 'ERR_FDRECYCLE_INVALID_OPTION', message: expect.stringContaining('finDelayMs') }),
      )
    }
    expect(recycler.stats().fdsCreated).toBe(0)
    return recycler.close()
  })
})
