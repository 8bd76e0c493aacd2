import dns from 'node:dns'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { blackholeListener } from '../../../../test/helpers/blackhole.js'
import { isLinux } from '../../../../test/helpers/system.js'
import { settle } from '../helpers.js'

// What broke: after a Happy Eyeballs attempt timed out, the recycled socket dissolved the attempt's
// fd and let libuv fail the connect through net's afterConnect, which also emitted
// 'connectionAttemptFailed' for that address; net emits only 'connectionAttemptTimeout' there.
describe.runIf(isLinux)('regression: a timed-out attempt is not also reported failed', () => {
  let blackhole: ReturnType<typeof blackholeListener>
  let filler: net.Socket
  let server: net.Server
  beforeAll(async () => {
    // 127.0.0.1:P drops SYNs (its accept queue is full); ::1:P answers
    blackhole = blackholeListener()
    filler = net.connect({ host: '127.0.0.1', port: blackhole.port })
    filler.on('error', () => {})
    await new Promise((resolve) => filler.once('connect', resolve))
    server = net.createServer((s) => {
      s.on('error', () => {}) // the client's destroy() may reset it
      s.end('hi\n')
    })
    await new Promise<void>((resolve) => server.listen(blackhole.port, '::1', resolve))
  })
  afterAll(() => {
    filler.destroy()
    server.close()
    blackhole.close()
  })

  const lookup = ((_host: string, _options: dns.LookupOptions, cb: (e: null, a: dns.LookupAddress[]) => void) =>
    setImmediate(() => cb(null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]))) as unknown as typeof dns.lookup

  async function events(make: (o: net.NetConnectOpts) => net.Socket): Promise<string[]> {
    const seen: string[] = []
    const s = make({ host: 'both.example', port: blackhole.port, lookup, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 10 })
    for (const name of ['connectionAttempt', 'connectionAttemptFailed', 'connectionAttemptTimeout']) {
      s.on(name, (address: string) => seen.push(`${name} ${address}`))
    }
    s.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code}`))
    await new Promise<void>((resolve) => s.once('connect', () => {
      seen.push('connect')
      resolve()
    }))
    const closed = new Promise((resolve) => s.once('close', resolve))
    s.destroy()
    await closed
    return seen
  }

  it('the same attempt events as net, and the timed-out fd is lent again', async () => {
    const plain = await events((o) => net.createConnection(o))
    expect(plain).toEqual([
      'connectionAttempt 127.0.0.1', 'connectionAttemptTimeout 127.0.0.1', 'connectionAttempt ::1', 'connect',
    ])
    const recycler = new SocketRecycler({ finDelayMs: 20 })
    expect(await events((o) => recycler.createConnection(o))).toEqual(plain)
    await settle()
    expect(await events((o) => recycler.createConnection(o))).toEqual(plain)
    await recycler.close()
    // one fd per family, the second round on the same two
    expect(recycler.stats()).toMatchObject({ fdsCreated: 2, connections: 4, reusedConnections: 2 })
  })
})
