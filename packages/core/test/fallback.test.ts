import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { exchange, settle } from './helpers.js'

async function churn(recycler: SocketRecycler, port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port }), `m${i}\nbye\n`, true)
    expect(r.data).toBe(`m${i}\nbye\n`)
    await settle()
  }
}

describe('plain-socket fallback', () => {
  it("mode: 'passthrough' hands out plain connections with the same API and honest stats", async () => {
    const recycler = new SocketRecycler({ mode: 'passthrough' })
    await using srv = await tcpServer(lineEcho)
    await churn(recycler, srv.port, 5)
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    expect(socket).toBeInstanceOf(net.Socket)
    expect(socket).toBeInstanceOf(RecycledSocket)
    await exchange(socket, 'x\nbye\n', true)
    expect(socket.recycled).toBe(false)
    expect(recycler.stats()).toMatchObject({ mode: 'passthrough', connections: 6, fdsCreated: 6, fdsClosed: 6, reusedConnections: 0, active: 0 })
    await recycler.close()
  })

  it('Unix paths and explicit local ports take the plain path on a recycling recycler', async () => {
    const recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port, localAddress: '127.0.0.1' }), 'x\nbye\n', true)
    expect(r.data).toBe('x\nbye\n')
    const missing = recycler.createConnection({ path: '/nonexistent/fdrecycle.sock' })
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => missing.on('error', resolve))
    expect(err.code).toBe('ENOENT')
    await settle()
    expect(recycler.stats()).toMatchObject({ mode: 'recycling', connections: 2, fdsCreated: 2, fdsClosed: 2, idle: 0, active: 0 })
    await recycler.close()
  })
})

describe('plain path bookkeeping', () => {
  it('a closed passthrough recycler refuses with a typed error, as a recycling one does', async () => {
    const recycler = new SocketRecycler({ mode: 'passthrough' })
    await recycler.close()
    await using srv = await tcpServer(lineEcho)
    const s = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => s.on('error', resolve))
    expect(err.code).toBe('ERR_FDRECYCLE_CLOSED')
    expect(srv.sockets).toHaveLength(0)
    expect(recycler.stats()).toMatchObject({ connections: 0, fdsCreated: 0, active: 0 })
  })

  it('a connect that throws synchronously on the plain path leaves no count behind', async () => {
    const recycler = new SocketRecycler({ mode: 'passthrough' })
    expect(() => recycler.createConnection({ host: '127.0.0.1', port: 70000 })).toThrow(RangeError)
    expect(recycler.stats()).toMatchObject({ connections: 0, fdsCreated: 0, active: 0 })
    await recycler.close()
  })

  it('close() bounds plain sockets in use as it does recycled ones', async () => {
    const recycler = new SocketRecycler({ mode: 'passthrough', closeTimeoutMs: 50 })
    await using srv = await tcpServer(lineEcho)
    const s = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await new Promise((resolve) => s.once('connect', resolve))
    const err = new Promise<NodeJS.ErrnoException>((resolve) => s.once('error', resolve))
    await recycler.close()
    expect((await err).code).toBe('ERR_FDRECYCLE_CLOSED')
    await settle()
    expect(recycler.stats()).toMatchObject({ connections: 1, fdsCreated: 1, fdsClosed: 1, active: 0 })
  })
})
