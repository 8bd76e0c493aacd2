import net from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { RecyclerClosedError, SocketRecycler } from '@fdrecycle/core'
import { closedPort, lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { isLinux } from '../../../test/helpers/system.js'
import { settle } from './helpers.js'

type Factory = (options: net.NetConnectOpts) => net.Socket

/** Records the events a scenario produces, so plain and recycled sockets can be compared. */
function record(socket: net.Socket): { events: string[]; done: Promise<void> } {
  const events: string[] = []
  for (const name of ['connect', 'ready', 'end', 'finish', 'timeout']) socket.on(name, () => events.push(name))
  socket.on('error', (err: NodeJS.ErrnoException) => events.push(`error:${err.code ?? err.message}`))
  const done = new Promise<void>((resolve) => socket.on('close', (hadError) => {
    events.push(`close:${hadError}`)
    resolve()
  }))
  return { events, done }
}

describe.runIf(isLinux)('a recycled socket behaves as a plain one', () => {
  const recycler = new SocketRecycler({ finDelayMs: 50 })
  const plain: Factory = (o) => net.connect(o)
  const recycled: Factory = (o) => recycler.createConnection(o)
  afterAll(async () => {
    console.log('STATS', JSON.stringify(recycler.stats()))
    await recycler.close()
  })

  async function both(scenario: (make: Factory) => Promise<string[]>): Promise<void> {
    const a = await scenario(plain)
    const b = await scenario(recycled)
    expect(b).toEqual(a)
    await settle()
  }

  it('refused connection', () =>
    both(async (make) => {
      const port = await closedPort()
      const r = record(make({ host: '127.0.0.1', port }))
      await r.done
      return r.events
    }))

  it('destroyed while connecting', () =>
    both(async (make) => {
      await using srv = await tcpServer(lineEcho)
      const s = make({ host: '127.0.0.1', port: srv.port })
      const r = record(s)
      s.destroy()
      await r.done
      return r.events
    }))

  it('destroyed while resolving the host name', () =>
    both(async (make) => {
      await using srv = await tcpServer(lineEcho)
      const s = make({ host: 'localhost', port: srv.port, family: 4 })
      const r = record(s)
      setImmediate(() => s.destroy())
      await r.done
      return r.events
    }))

  it('end() twice, then write after end', () =>
    both(async (make) => {
      await using srv = await tcpServer(lineEcho)
      const s = make({ host: '127.0.0.1', port: srv.port })
      const r = record(s)
      s.on('connect', () => {
        s.end('bye\n')
        s.end()
        s.write('late', (err) => r.events.push(`write-cb:${(err as NodeJS.ErrnoException | null)?.code}`))
      })
      s.resume()
      await r.done
      return r.events
    }))

  it('written and ended before the connection is up', () =>
    both(async (make) => {
      await using srv = await tcpServer(lineEcho)
      const s = make({ host: '127.0.0.1', port: srv.port })
      const r = record(s)
      let data = ''
      s.setEncoding('utf8')
      s.on('data', (d: string) => (data += d))
      s.end('early\nbye\n')
      await r.done
      return [...r.events, data]
    }))

  it('setTimeout fires a timeout event on an idle connection', () =>
    both(async (make) => {
      await using srv = await tcpServer(lineEcho)
      const s = make({ host: '127.0.0.1', port: srv.port })
      const r = record(s)
      s.setTimeout(20, () => s.destroy())
      await r.done
      return r.events
    }))

  it('a bad port throws synchronously with the same error as net', () => {
    for (const port of [70000, -1, 'abc', true]) {
      let a: NodeJS.ErrnoException | undefined
      let b: NodeJS.ErrnoException | undefined
      try {
        net.connect({ host: '127.0.0.1', port: port as number })
      } catch (err) {
        a = err as NodeJS.ErrnoException
      }
      try {
        recycler.createConnection({ host: '127.0.0.1', port: port as number })
      } catch (err) {
        b = err as NodeJS.ErrnoException
      }
      expect(b?.code).toBe(a?.code)
      expect(b?.message).toBe(a?.message)
      expect(b?.constructor).toBe(a?.constructor)
    }
  })

  it('a closed recycler refuses with a typed error and owns no fd', async () => {
    const r2 = new SocketRecycler()
    await r2.close()
    const s = r2.createConnection({ host: '127.0.0.1', port: 9 })
    const err = await new Promise<Error>((resolve) => s.on('error', resolve))
    expect(err).toBeInstanceOf(RecyclerClosedError)
    expect((err as RecyclerClosedError).code).toBe('ERR_FDRECYCLE_CLOSED')
    expect(r2.stats()).toMatchObject({ fdsCreated: 0, idle: 0, active: 0 })
  })
})
