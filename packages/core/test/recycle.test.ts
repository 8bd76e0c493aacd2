import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { greetAndClose, lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { isLinux, socketInode, timeWaitCount } from '../../../test/helpers/system.js'
import { exchange, settle } from './helpers.js'

describe.runIf(isLinux)('one fd, many connections', () => {
  let recycler: SocketRecycler
  afterEach(async () => {
    await recycler?.close()
  })

  it('serves consecutive connections to several servers from one socket, each with its own port and bytes', async () => {
    recycler = new SocketRecycler()
    expect(recycler.stats().mode).toBe('recycling')
    await using a = await tcpServer(greetAndClose)
    await using b = await tcpServer(greetAndClose)
    await using c = await tcpServer(lineEcho)
    const inodes = new Set<string>()
    const tuples = new Set<string>()
    let previousPort = -1
    for (let i = 0; i < 30; i++) {
      const srv = [a, b, c][i % 3]!
      const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
      let inode = ''
      socket.once('connect', () => {
        inode = socketInode((socket as unknown as { _handle: { fd: number } })._handle.fd)
      })
      const msg = `msg-${i}`
      const result = await exchange(socket, srv === c ? `${msg}\nbye\n` : undefined)
      expect(result.error).toBeNull()
      if (srv === c) expect(result.data).toBe(`${msg}\nbye\n`)
      else expect(result.data).toBe(`hello ${result.localPort}\n`)
      inodes.add(inode)
      // A new connection each time: a new local port (the kernel may reuse a port towards another
      // server; the 4-tuple is what must be new).
      expect(result.localPort).not.toBe(previousPort)
      previousPort = result.localPort!
      tuples.add(`${result.localPort}->${srv.port}`)
      await settle()
    }
    expect(inodes.size).toBe(1)
    expect(tuples.size).toBe(30)
    const stats = recycler.stats()
    expect(stats.fdsCreated).toBe(1)
    expect(stats.connections).toBe(30)
    expect(stats.reusedConnections).toBe(29)
    expect(stats.resetsSent).toBe(0)
  })

  it('leaves no TIME_WAIT on the client and no ECONNRESET at a peer that closes first', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    for (let i = 0; i < 50; i++) {
      const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
      const result = await exchange(socket, 'ping\nbye\n', true)
      expect(result.data).toBe('ping\nbye\n')
      await settle()
    }
    expect(srv.errors).toEqual([])
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    expect(recycler.stats().peerClosedFirst).toBe(50)
    expect(recycler.stats().fdsCreated).toBe(1)
  })

  it('a plain net socket doing the same leaves client TIME_WAIT (the difference is measured, not assumed)', async () => {
    const net = await import('node:net')
    await using srv = await tcpServer(lineEcho)
    for (let i = 0; i < 20; i++) {
      const result = await exchange(net.connect({ host: '127.0.0.1', port: srv.port }), 'ping\nbye\n', true)
      expect(result.data).toBe('ping\nbye\n')
    }
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBeGreaterThanOrEqual(15)
  })
})
