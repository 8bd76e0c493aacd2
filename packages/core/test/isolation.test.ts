import { AsyncLocalStorage } from 'node:async_hooks'
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { IPPROTO_IP, IPPROTO_TCP, IP_TOS, SOL_SOCKET, SO_KEEPALIVE, TCP_NODELAY } from '../src/ffi/libc.js'
import { getIntOption, getLinger, setIntOption } from '../src/ffi/syscalls.js'
import { lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { fdOf, isLinux, socketInode } from '../../../test/helpers/system.js'
import { exchange, settle } from './helpers.js'

interface Options {
  nodelay: number
  keepalive: number
  linger: boolean
  tos: number
}

function readOptions(socket: net.Socket): Options {
  const fd = fdOf(socket)
  return {
    nodelay: getIntOption(fd, IPPROTO_TCP, TCP_NODELAY),
    keepalive: getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE),
    linger: getLinger(fd).onoff,
    tos: getIntOption(fd, IPPROTO_IP, IP_TOS),
  }
}

const hasTos = typeof (RecycledSocket.prototype as unknown as { setTypeOfService?: unknown }).setTypeOfService === 'function' &&
  Number(process.versions.node.split('.')[0]) >= 24

describe.runIf(isLinux)('tenant isolation', () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    recycler = undefined
  })

  it("AsyncLocalStorage: each connection's callbacks see the store of the code that opened it", async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const als = new AsyncLocalStorage<string>()
    const inodes = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const seen = new Set<string | undefined>()
      await als.run(`tenant-${i}`, async () => {
        const socket = recycler!.createConnection({ host: '127.0.0.1', port: srv.port })
        socket.on('connect', () => {
          seen.add(als.getStore())
          inodes.add(socketInode(fdOf(socket)))
        })
        socket.on('data', () => seen.add(als.getStore()))
        socket.on('end', () => seen.add(als.getStore()))
        const r = await exchange(socket, `ping ${i}\nbye\n`, true)
        expect(r.data).toBe(`ping ${i}\nbye\n`)
      })
      expect([...seen]).toEqual([`tenant-${i}`])
      await settle()
    }
    expect(inodes.size).toBe(1)
  })

  it('nodelay, keepalive, linger and TOS set by one tenant do not reach the next; ref() is back', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const first = recycler.createConnection({ host: '127.0.0.1', port: srv.port }) as RecycledSocket
    let before: Options | undefined
    let changed: Options | undefined
    first.on('connect', () => {
      before = readOptions(first)
      first.setNoDelay(true)
      first.setKeepAlive(true, 5000)
      first.setLinger(true, 7)
      if (hasTos) first.setTypeOfService(0x10)
      first.unref()
      changed = readOptions(first)
    })
    const r1 = await exchange(first, 'a\nbye\n', true)
    expect(r1.data).toBe('a\nbye\n')
    expect(changed).toMatchObject({ nodelay: 1, keepalive: 1, linger: true, ...(hasTos ? { tos: 0x10 } : {}) })
    await settle()

    const second = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    let after: Options | undefined
    let refed: boolean | undefined
    let sameFd = false
    second.on('connect', () => {
      after = readOptions(second)
      refed = (second as unknown as { _handle: { hasRef(): boolean } })._handle.hasRef()
      sameFd = recycler!.stats().reusedConnections === 1
    })
    const r2 = await exchange(second, 'b\nbye\n', true)
    expect(r2.data).toBe('b\nbye\n')
    expect(sameFd).toBe(true)
    expect(after).toEqual(before)
    expect(refed).toBe(true)
  })

  // setNoDelay() before connect() (as pg calls it) is applied by net once connected, so the last
  // tenant's NODELAY is not reset first; a wish taken back before connect() must still reset it.
  it('setNoDelay before connect: the last wish counts, the last tenant\'s NODELAY never leaks', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const tenant = async (before: (s: RecycledSocket) => void): Promise<number> => {
      const socket = recycler!.createSocket()
      before(socket)
      let nodelay = -1
      socket.on('connect', () => (nodelay = readOptions(socket).nodelay))
      socket.connect(srv.port, '127.0.0.1')
      const r = await exchange(socket, 'x\nbye\n', true)
      expect(r.data).toBe('x\nbye\n')
      await settle()
      return nodelay
    }
    expect(await tenant((s) => s.setNoDelay(true))).toBe(1)
    expect(await tenant((s) => s.setNoDelay(true))).toBe(1)
    expect(await tenant((s) => {
      s.setNoDelay(true)
      s.setNoDelay(false)
    })).toBe(0)
    expect(await tenant(() => {})).toBe(0)
    expect(await tenant((s) => s.setNoDelay(true))).toBe(1)
    expect(await tenant(() => {})).toBe(0)
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, reusedConnections: 5 })
  })

  // TCP_NODELAY as set through the handle is remembered per fd, so that net's setNoDelay(true)
  // after each connect costs no setsockopt when the fd has it on already; 'verify' re-reads it for
  // code that changed it on the fd directly, and the next tenant still gets what it asked for.
  it("resetSocketOptions 'verify': NODELAY turned off on the fd directly is seen, and set again for a tenant that asks", async () => {
    recycler = new SocketRecycler({ resetSocketOptions: 'verify' })
    await using srv = await tcpServer(lineEcho)
    const tenant = async (after: (s: net.Socket) => void): Promise<number> => {
      const socket = recycler!.createConnection({ host: '127.0.0.1', port: srv.port, noDelay: true } as net.NetConnectOpts)
      let nodelay = -1
      socket.on('connect', () => {
        nodelay = readOptions(socket).nodelay
        after(socket)
      })
      const r = await exchange(socket, 'x\nbye\n', true)
      expect(r.data).toBe('x\nbye\n')
      await settle()
      return nodelay
    }
    expect(await tenant((s) => setIntOption(fdOf(s), IPPROTO_TCP, TCP_NODELAY, 0))).toBe(1)
    expect(await tenant(() => {})).toBe(1)
    expect(recycler.stats()).toMatchObject({ fdsCreated: 1, reusedConnections: 1 })
  })

  it("one tenant's setTimeout() timer is cleared when it lets go", async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const first = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    first.setTimeout(60_000)
    const timeoutSymbol = Object.getOwnPropertySymbols(first).find((s) => s.description === 'timeout')!
    await exchange(first, 'a\nbye\n', true)
    const timer = (first as unknown as Record<symbol, { _destroyed?: boolean } | null>)[timeoutSymbol]
    expect(timer === null || timer?._destroyed === true).toBe(true)
  })

  it('bytesRead and bytesWritten count per tenant, not per fd', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    for (const msg of ['first message\nbye\n', 'two\nbye\n']) {
      const socket = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
      await exchange(socket, msg, true)
      expect(socket.bytesWritten).toBe(Buffer.byteLength(msg))
      expect(socket.bytesRead).toBe(Buffer.byteLength(msg))
      await settle()
    }
    expect(recycler.stats().reusedConnections).toBe(1)
  })
})
