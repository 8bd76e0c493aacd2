import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { settle, until } from '../helpers.js'

// What broke: resetAndDestroy() right after createConnection(), before an fd or the lookup's
// answer was in place, destroyed the socket with ERR_SOCKET_CLOSED and close(hadError=true); net
// has its handle at once, waits for the connect, then resets: 'connect', close(false).
describe.runIf(isLinux)('regression: resetAndDestroy() before the connect', () => {
  async function events(make: (o: net.NetConnectOpts) => net.Socket, options: net.NetConnectOpts): Promise<string[]> {
    const seen: string[] = []
    const s = make(options)
    s.on('connect', () => seen.push('connect'))
    s.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code}`))
    s.resetAndDestroy()
    await new Promise<void>((resolve) => s.once('close', (hadError) => {
      seen.push(`close ${hadError}`)
      resolve()
    }))
    return seen
  }

  for (const host of ['127.0.0.1', 'localhost']) {
    it(`to ${host}: 'connect', then close(false), as net; the peer sees a reset`, async () => {
      const resets: string[] = []
      await using srv = await tcpServer((s) => {
        lineEcho(s, srv)
        s.on('error', (e: NodeJS.ErrnoException) => resets.push(e.code ?? e.message))
      })
      const options = { host, port: srv.port, family: 4, autoSelectFamily: false }
      const plain = await events((o) => net.createConnection(o), options)
      expect(plain).toEqual(['connect', 'close false'])
      const recycler = new SocketRecycler()
      expect(await events((o) => recycler.createConnection(o), options)).toEqual(plain) // empty pool
      await settle()
      expect(await events((o) => recycler.createConnection(o), options)).toEqual(plain) // a pooled fd
      await until(() => resets.length === 3, 'three resets at the server')
      expect(resets).toEqual(['ECONNRESET', 'ECONNRESET', 'ECONNRESET'])
      expect(recycler.stats()).toMatchObject({ resetsSent: 2, reusedConnections: 1 })
      await recycler.close()
    })
  }
})
