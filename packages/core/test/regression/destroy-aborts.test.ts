import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer, type TrackedServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { settle, until } from '../helpers.js'

type Make = (o: net.NetConnectOpts) => net.Socket

/** A server that sends `size` bytes to each client and records how each write ended. */
async function download(size: number): Promise<TrackedServer & { outcomes: string[] }> {
  const outcomes: string[] = []
  const srv = await tcpServer((s) => {
    s.on('error', (e: NodeJS.ErrnoException) => outcomes.push(e.code ?? e.message))
    s.on('finish', () => outcomes.push('all sent'))
    s.end(Buffer.alloc(size, 'x'))
  })
  return Object.assign(srv, { outcomes })
}

// What broke: destroy() was no abort. A socket destroyed while its peer was still sending went to
// a drain that read and dropped everything the peer sent, for up to finDelayMs + drainTimeoutMs, and
// the peer saw a clean close: a client aborting a large download kept downloading it. Plain net
// follows the kernel's rule (a close with unread data sends an RST): the peer meets ECONNRESET or
// EPIPE at once. So does a recycled socket now, and its fd is dissolved and reused at once.
describe.runIf(isLinux)('regression: destroy() aborts as a plain close does', () => {
  const size = 32 * 1024 * 1024 // more than loopback's socket buffers hold

  async function abortDownload(make: Make, srv: Awaited<ReturnType<typeof download>>): Promise<void> {
    const s = make({ host: '127.0.0.1', port: srv.port })
    await new Promise<void>((resolve) => s.once('data', () => {
      s.destroy() // abandon the rest
      resolve()
    }))
    await new Promise((resolve) => s.once('close', resolve))
  }

  it('aborting a large download: the peer gets a reset at once, as with net; the fd is reused', async () => {
    await using plainSrv = await download(size)
    await abortDownload((o) => net.createConnection(o), plainSrv)
    await until(() => plainSrv.outcomes.length > 0, 'the plain peer to learn')
    expect(['ECONNRESET', 'EPIPE']).toContain(plainSrv.outcomes[0])

    const recycler = new SocketRecycler({ finDelayMs: 60_000, drainTimeoutMs: 60_000 })
    await using srv = await download(size)
    await abortDownload((o) => recycler.createConnection(o), srv)
    // no drain: with the delays above, a drained download would leave the peer waiting a minute
    await until(() => srv.outcomes.length > 0, 'the peer to learn')
    expect(['ECONNRESET', 'EPIPE']).toContain(srv.outcomes[0])
    await settle()
    expect(recycler.stats()).toMatchObject({ resetsSent: 1, draining: 0, idle: 1, discardedBytes: 0 })
    // the fd serves the next connection, with none of the download's bytes
    await using echo = await tcpServer(lineEcho)
    const next = recycler.createConnection({ host: '127.0.0.1', port: echo.port })
    next.setEncoding('utf8')
    let data = ''
    next.on('data', (d: string) => (data += d))
    next.end('mine\nbye\n')
    await new Promise((resolve) => next.once('close', resolve))
    expect(data).toBe('mine\nbye\n')
    expect(recycler.stats()).toMatchObject({ reusedConnections: 1, fdsCreated: 1 })
    await recycler.close()
  })

  it('data arriving after the user left: a reset after one read, as net would reset', async () => {
    const recycler = new SocketRecycler({ finDelayMs: 60_000, drainTimeoutMs: 60_000 })
    await using srv = await tcpServer((s) => s.resume())
    const s = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await new Promise((resolve) => s.once('connect', resolve))
    await until(() => srv.sockets.length === 1, 'the server side')
    s.destroy() // nothing unread: the connection drains (our FIN withheld)
    await new Promise((resolve) => s.once('close', resolve))
    expect(recycler.stats()).toMatchObject({ draining: 1, resetsSent: 0 })
    const late = srv.sockets[0]!
    late.write('late\n')
    await until(() => recycler.stats().draining === 0, 'the drain to end at the data')
    await until(() => srv.errors.length > 0, 'the reset at the peer')
    expect((srv.errors[0] as NodeJS.ErrnoException).code).toBe('ECONNRESET')
    expect(recycler.stats()).toMatchObject({ resetsSent: 1, discardedBytes: 5, draining: 0 })
    await recycler.close()
  })

  it('a quiet connection is still drained gracefully: no reset, the peer closes first', async () => {
    const recycler = new SocketRecycler({ finDelayMs: 5_000 })
    await using srv = await tcpServer(lineEcho)
    const s = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    s.setEncoding('utf8')
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve())
      s.write('x\n')
    })
    s.destroy() // everything read: drained
    await new Promise((resolve) => s.once('close', resolve))
    srv.sockets[0]!.end() // the peer closes first
    await until(() => recycler.stats().draining === 0, 'the drain to see the EOF')
    expect(srv.errors).toEqual([])
    expect(recycler.stats()).toMatchObject({ resetsSent: 0, peerClosedFirst: 1, discardedBytes: 0 })
    await recycler.close()
  })
})
