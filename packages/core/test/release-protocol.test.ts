import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { closeAfterClientFin, lineEcho, neverClose, tcpServer } from '../../../test/helpers/servers.js'
import { fdOf, isLinux, socketInode, timeWaitCount } from '../../../test/helpers/system.js'
import { exchange, settle, until } from './helpers.js'

describe.runIf(isLinux)('release protocol', () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    recycler = undefined
  })

  it('withholds our FIN until the peer closes: the peer sees a clean EOF, we keep no TIME_WAIT', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const ends: string[] = []
    srv.server.on('connection', (s) => s.on('end', () => ends.push('end')))
    const result = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'a\nbye\n', true)
    expect(result.data).toBe('a\nbye\n')
    await settle()
    expect(srv.errors).toEqual([])
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    expect(timeWaitCount(srv.port, 'server', srv.clientPorts)).toBe(1)
    expect(recycler.stats()).toMatchObject({ peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, idle: 1, active: 0 })
  })

  it('a peer that waits for our FIN gets it after finDelayMs; the fd is reused after its EOF', async () => {
    recycler = new SocketRecycler({ finDelayMs: 50 })
    await using srv = await tcpServer(closeAfterClientFin)
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const result = await exchange(socket, 'hello', true)
    expect(result.error).toBeNull()
    await until(() => recycler!.stats().idle === 1, 'the fd back in the pool')
    expect(recycler.stats()).toMatchObject({ finSentFirst: 1, peerClosedFirst: 0, recycled: 1, resetsSent: 0 })
    expect(srv.errors).toEqual([])
  })

  it("onDrainTimeout 'reset' dissolves a never-closing peer's connection (RST) and reuses the fd", async () => {
    recycler = new SocketRecycler({ finDelayMs: 10, drainTimeoutMs: 50, onDrainTimeout: 'reset' })
    await using srv = await tcpServer(neverClose)
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    let inode = ''
    socket.on('connect', () => {
      inode = socketInode(fdOf(socket))
      socket.destroy()
    })
    await new Promise((resolve) => socket.on('close', resolve))
    await until(() => recycler!.stats().drainTimeouts === 1 && recycler!.stats().idle === 1, 'the drain timeout')
    expect(recycler.stats()).toMatchObject({ resetsSent: 1, fdsClosed: 0, recycled: 1 })
    // The peer got our FIN first (it stays half-open); after the RST its next write fails.
    srv.sockets[0]!.write('anyone there?')
    await until(() => srv.errors.length > 0, 'the peer to see the reset')
    expect(['ECONNRESET', 'EPIPE']).toContain((srv.errors[0] as NodeJS.ErrnoException).code)
    // the same kernel socket serves the next connection, once lendable (a released fd waits out one
    // poll phase first, `cooling`; a connect before that gets a new fd, as one from a busy pool would)
    await until(() => recycler!.stats().cooling === 0, 'the fd to be lendable')
    await using srv2 = await tcpServer(lineEcho)
    const next = recycler.createConnection({ host: '127.0.0.1', port: srv2.port })
    let inode2 = ''
    next.on('connect', () => (inode2 = socketInode(fdOf(next))))
    const r = await exchange(next, 'x\nbye\n', true)
    expect(r.data).toBe('x\nbye\n')
    expect(inode2).toBe(inode)
  })

  it("onDrainTimeout 'close' closes the fd of a never-closing peer", async () => {
    recycler = new SocketRecycler({ finDelayMs: 10, drainTimeoutMs: 50, onDrainTimeout: 'close' })
    await using srv = await tcpServer(neverClose)
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    // The user is gone (destroy); a plain socket would have sent its FIN and forgotten the peer.
    socket.on('connect', () => socket.destroy())
    await until(() => recycler!.stats().drainTimeouts === 1, 'the drain timeout')
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, fdsClosed: 1, resetsSent: 0, idle: 0, draining: 0 })
  })

  it('resetAndDestroy() sends an RST and keeps the fd', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(neverClose)
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    socket.on('connect', () => socket.resetAndDestroy())
    await new Promise((resolve) => socket.on('close', resolve))
    await until(() => srv.errors.length === 1, 'the RST at the peer')
    expect((srv.errors[0] as NodeJS.ErrnoException).code).toBe('ECONNRESET')
    await settle()
    expect(recycler.stats()).toMatchObject({ resetsSent: 1, idle: 1, fdsClosed: 0 })
  })

  it('bytes a tenant left unread never reach the next tenant', async () => {
    recycler = new SocketRecycler({ finDelayMs: 20 })
    const big = Buffer.alloc(4 * 1024 * 1024, 'x')
    await using flood = await tcpServer((s) => {
      s.on('error', () => {})
      s.end(big)
    })
    const first = recycler.createConnection({ host: '127.0.0.1', port: flood.port })
    await new Promise<void>((resolve) => {
      first.once('data', () => {
        first.destroy() // abandon the rest of the 4 MiB
        resolve()
      })
    })
    await until(() => recycler!.stats().idle === 1 && recycler!.stats().draining === 0 && recycler!.stats().cooling === 0, 'the fd back in the pool')
    // unread bytes at destroy(): a reset, as a plain close sends, and no drain
    expect(recycler.stats()).toMatchObject({ resetsSent: 1, discardedBytes: 0 })
    await using srv = await tcpServer(lineEcho)
    const second = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const r = await exchange(second, 'only mine\nbye\n', true)
    expect(r.data).toBe('only mine\nbye\n')
    expect(recycler.stats().reusedConnections).toBe(1)
  })

  it('a plain socket that ends first keeps a TIME_WAIT (what the withheld FIN avoids)', async () => {
    await using srv = await tcpServer(lineEcho)
    const r = await exchange(net.connect({ host: '127.0.0.1', port: srv.port }), 'a\nbye\n', true)
    expect(r.data).toBe('a\nbye\n')
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(1)
  })
})
