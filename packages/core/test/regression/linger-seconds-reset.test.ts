import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler, type RecycledSocket } from '@fdrecycle/core'
import { getLinger, setLinger } from '../../src/ffi/syscalls.js'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { exchange, settle } from '../helpers.js'

const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd

// What broke: a tenant set SO_LINGER { on, 5 s }; the reset wrote { off, 0 }, but the kernel keeps
// sk_lingertime when l_onoff is 0 (sock_setsockopt), so the next tenant read { off, 5 } where a
// fresh socket reads { off, 0 }.
describe.runIf(isLinux)('regression: SO_LINGER seconds do not pass to the next tenant', () => {
  for (const resetSocketOptions of ['tracked', 'verify'] as const) {
    it(`the next tenant reads what a fresh socket reads (resetSocketOptions ${resetSocketOptions})`, async () => {
      await using srv = await tcpServer(lineEcho)
      const recycler = new SocketRecycler({ finDelayMs: 20, resetSocketOptions })
      const fresh = net.connect({ host: '127.0.0.1', port: srv.port })
      await new Promise((resolve) => fresh.once('connect', resolve))
      const expected = getLinger(fdOf(fresh))
      fresh.destroy()
      expect(expected).toEqual({ onoff: false, seconds: 0 })

      const a = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
      a.once('connect', () => {
        // 'verify' must find what a tenant set past the socket's own methods
        if (resetSocketOptions === 'verify') setLinger(fdOf(a), { onoff: true, seconds: 5 })
        else (a as RecycledSocket).setLinger(true, 5)
        expect(getLinger(fdOf(a))).toEqual({ onoff: true, seconds: 5 })
        a.end('bye\n')
      })
      await exchange(a)
      await settle()
      const b = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
      let seen: unknown
      b.once('connect', () => {
        seen = getLinger(fdOf(b))
        b.end('bye\n')
      })
      await exchange(b)
      expect(recycler.stats().reusedConnections).toBe(1)
      expect(seen).toEqual(expected)
      await recycler.close()
    })
  }
})
