import { once } from 'node:events'
import type net from 'node:net'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { selfSignedCert, type TestCert } from '../../../test/helpers/certs.js'
import { isLinux } from '../../../test/helpers/system.js'
import { settle } from './helpers.js'

describe.runIf(isLinux)('TLS over a recycled socket', () => {
  let cert: TestCert
  let server: tls.Server
  let port: number
  beforeAll(async () => {
    cert = selfSignedCert()
    // echoes lines; closes after "bye"
    server = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
      s.on('error', () => {})
      s.setEncoding('utf8')
      s.on('data', (d: string) => (d.includes('bye') ? s.end(`ok ${d}`) : s.write(`echo ${d}`)))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as net.AddressInfo).port
  })
  afterAll(() => server.close())

  async function session(recycler: SocketRecycler, i: number, wrapWhen: 'before-connect' | 'after-connect'): Promise<string> {
    const raw = recycler.createConnection({ host: '127.0.0.1', port })
    if (wrapWhen === 'after-connect') await once(raw, 'connect')
    const secure = tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost' })
    secure.setEncoding('utf8')
    let got = ''
    secure.on('secureConnect', () => secure.write(`hi ${i}\n`))
    secure.on('data', (d: string) => {
      got += d
      if (got === `echo hi ${i}\n`) secure.end('bye\n')
    })
    await once(secure, 'close')
    return got
  }

  it.each(['before-connect', 'after-connect'] as const)('wrapped %s: many sessions, one fd, each sees its own bytes', async (when) => {
    const recycler = new SocketRecycler()
    for (let i = 0; i < 6; i++) {
      expect(await session(recycler, i, when)).toBe(`echo hi ${i}\nok bye\n`)
      await settle()
    }
    const stats = recycler.stats()
    expect(stats.fdsCreated).toBe(1)
    expect(stats.reusedConnections).toBe(5)
    expect(stats.resetsSent).toBe(0)
    await recycler.close()
  })

  it('options set through the TLS socket (which go straight to the TCP handle) do not reach the next tenant', async () => {
    const { IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, TCP_NODELAY } = await import('../src/ffi/libc.js')
    const { getIntOption } = await import('../src/ffi/syscalls.js')
    const recycler = new SocketRecycler()
    const raw = recycler.createConnection({ host: '127.0.0.1', port })
    await once(raw, 'connect')
    const secure = tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost' })
    await once(secure, 'secureConnect')
    secure.setNoDelay(true)
    secure.setKeepAlive(true, 1000)
    const fd = (raw as unknown as { _handle: { fd: number } })._handle.fd
    expect(getIntOption(fd, IPPROTO_TCP, TCP_NODELAY)).toBe(1)
    expect(getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE)).toBe(1)
    secure.end('bye\n')
    secure.resume()
    await once(secure, 'close')
    await settle()
    const next = recycler.createConnection({ host: '127.0.0.1', port })
    await once(next, 'connect')
    const fd2 = (next as unknown as { _handle: { fd: number } })._handle.fd
    expect(recycler.stats().reusedConnections).toBe(1)
    expect(getIntOption(fd2, IPPROTO_TCP, TCP_NODELAY)).toBe(0)
    expect(getIntOption(fd2, SOL_SOCKET, SO_KEEPALIVE)).toBe(0)
    next.destroy()
    await recycler.close()
  })
})
