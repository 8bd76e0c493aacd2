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

  // node:http destroys a `Connection: close` socket once the response is parsed, before it reads the
  // server's FIN: a drain would read that FIN one poll phase later. A peek at destroy() sees it.
  it("destroy() with the peer's FIN already in: no drain, our FIN at once, parked; the peer sees a clean EOF; the fd is reused", async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer((s) => {
      s.on('end', () => s.destroy())
      s.end('reply\n')
    })
    const serverEnds: string[] = []
    srv.server.on('connection', (s) => s.on('end', () => serverEnds.push('end')))
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await new Promise<void>((resolve) => socket.once('data', () => {
      socket.pause() // the FIN stays unread in the kernel
      resolve()
    }))
    // on loopback the server's FIN is in our kernel once its shutdown(2) returned ('finish')
    const server = srv.sockets[0]!
    if (!server.writableFinished) await new Promise((resolve) => server.once('finish', resolve))
    socket.destroy()
    // released inside destroy(): no drain, our FIN sent, the fd parked (both FINs out)
    expect(recycler.stats()).toMatchObject({ draining: 0, active: 0, peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0 })
    await new Promise((resolve) => socket.once('close', resolve))
    await until(() => serverEnds.length === 1, "our FIN at the server")
    await settle()
    expect(srv.errors).toEqual([])
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }))
    expect(r).toMatchObject({ data: 'reply\n', error: null })
    expect(recycler.stats()).toMatchObject({ reusedConnections: 1, fdsCreated: 1, resetsSent: 0 })
  })

  it("destroy() after a reset the socket never read: the reset is not drained, the fd is dissolved silently and reused with no error left", async () => {
    recycler = new SocketRecycler({ finDelayMs: 60_000, drainTimeoutMs: 60_000 })
    await using srv = await tcpServer(() => {})
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.pause()
    await until(() => srv.sockets.length === 1, 'the server side')
    // the server's close(2) with SO_LINGER 0 puts its RST in our kernel before it returns (loopback);
    // destroy() in the same tick: the socket has not read it, so the peek at destroy meets it
    srv.sockets[0]!.resetAndDestroy()
    socket.destroy()
    expect(recycler.stats().draining).toBe(0)
    await new Promise((resolve) => socket.once('close', resolve))
    await settle()
    // the connection was gone (CLOSE): dissolved without an RST of ours, no drain
    expect(recycler.stats()).toMatchObject({ draining: 0, idle: 1, resetsSent: 0, fdsClosed: 0 })
    // the next tenant meets no error of the last connection (its reset was consumed, SO_ERROR clear)
    await using echo = await tcpServer(lineEcho)
    const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: echo.port }), 'mine\nbye\n', true)
    expect(r).toMatchObject({ data: 'mine\nbye\n', error: null })
    expect(recycler.stats()).toMatchObject({ reusedConnections: 1, fdsCreated: 1 })
  })

  it('a reset the socket read (destroyed with ECONNRESET): not counted as the peer closing first; dissolved silently, reused', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer((s) => s.once('data', () => s.resetAndDestroy()))
    const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.pause()
    const error = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve))
    socket.write('x')
    expect((await error).code).toBe('ECONNRESET')
    await new Promise((resolve) => socket.once('close', resolve))
    await settle()
    // (the read took the reset's error: a peek now reads as EOF, the kernel's state says CLOSE)
    expect(recycler.stats()).toMatchObject({ peerClosedFirst: 0, finSentFirst: 0, resetsSent: 0, idle: 1, fdsClosed: 0, draining: 0 })
  })

  it('a plain socket that ends first keeps a TIME_WAIT (what the withheld FIN avoids)', async () => {
    await using srv = await tcpServer(lineEcho)
    const r = await exchange(net.connect({ host: '127.0.0.1', port: srv.port }), 'a\nbye\n', true)
    expect(r.data).toBe('a\nbye\n')
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(1)
  })
})
