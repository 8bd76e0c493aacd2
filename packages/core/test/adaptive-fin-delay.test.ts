import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer, type Behaviour } from '../../../test/helpers/servers.js'
import { fdOf, isLinux, timeWaitCount } from '../../../test/helpers/system.js'
import { settle } from './helpers.js'
import { tcpRttUs } from '../src/ffi/syscalls.js'

/** Echoes what it reads and closes only after the client's FIN (Kafka brokers, many RPC servers). */
const echoUntilFin: Behaviour = (socket) => {
  socket.on('data', (d) => socket.write(d))
  socket.on('end', () => socket.end())
}

/** connect, write, read the echo, end(), await 'close': returns ms from end() to 'close'. */
function roundTrip(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let endedAt = 0
    socket.once('error', reject)
    socket.once('connect', () => socket.write('ping'))
    socket.once('data', () => {
      endedAt = performance.now()
      socket.end()
    })
    socket.resume()
    socket.once('close', () => resolve(performance.now() - endedAt))
  })
}

async function loop(n: number, connect: () => net.Socket): Promise<{ totalMs: number; closeMs: number[] }> {
  const closeMs: number[] = []
  const start = performance.now()
  for (let i = 0; i < n; i++) closeMs.push(await roundTrip(connect()))
  return { totalMs: performance.now() - start, closeMs }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (xs: number[]): string => `median ${median(xs).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`

describe.runIf(isLinux)("releasePolicy 'adaptive' (the default)", () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    recycler = undefined
  })

  it('an echo-style peer (closes after our FIN) gets our FIN at once after one probe; fds are reused', async () => {
    await using srv = await tcpServer(echoUntilFin)
    const plainConnect = () => net.createConnection(srv.port, '127.0.0.1')
    await loop(10, plainConnect) // warm-up
    const plainA = await loop(50, plainConnect)
    recycler = new SocketRecycler()
    const r = recycler
    const recycledConnect = () => r.createConnection(srv.port, '127.0.0.1')
    const first = await loop(50, recycledConnect)
    const plainB = await loop(50, plainConnect)
    const then = await loop(50, recycledConnect)
    const plainTotal = (plainA.totalMs + plainB.totalMs) / 2
    const plainClose = [...plainA.closeMs, ...plainB.closeMs]
    console.log(
      `echo x50: plain ${plainTotal.toFixed(0)} ms, recycled (first 50, one probe of finDelayMs) ${first.totalMs.toFixed(0)} ms; ` +
        `end() to 'close': plain ${fmt(plainClose)}, recycled after the first 50 ${fmt(then.closeMs)}`,
    )
    // one probe of finDelayMs (1 s), then our FIN at once
    expect(first.totalMs).toBeLessThan(plainTotal + 1500)
    expect(first.closeMs.filter((ms) => ms >= 1000)).toHaveLength(1)
    // after that, 'close' comes as fast as plain's: the median within 3x (+1 ms), and none waits
    // anything like finDelayMs (a fixed policy: 1000 ms each)
    expect(median(then.closeMs)).toBeLessThan(3 * median(plainClose) + 1)
    expect(Math.max(...then.closeMs)).toBeLessThan(250)
    const s = r.stats()
    expect(s.connections).toBe(100)
    expect(s.reusedConnections).toBeGreaterThanOrEqual(98)
    expect(s.fdsCreated).toBeLessThanOrEqual(2)
  })

  it('a peer that closes after a goodbye still closes first: no client TIME_WAIT, and no fixed second waited', async () => {
    recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const r = recycler
    for (let i = 0; i < 20; i++) {
      const s = r.createConnection(srv.port, '127.0.0.1')
      await new Promise<void>((resolve, reject) => {
        s.on('error', reject)
        s.on('connect', () => s.end('a\nbye\n'))
        s.resume()
        s.on('close', () => resolve())
      })
    }
    await settle()
    expect(timeWaitCount(srv.port, 'client', srv.clientPorts)).toBe(0)
    expect(r.stats()).toMatchObject({ connections: 20, peerClosedFirst: 20, finSentFirst: 0 })
  })

  it("an explicit finDelayMs still wins: 'fixed' unless releasePolicy says otherwise", async () => {
    for (const [options, policy] of [
      [{ finDelayMs: 50 }, 'fixed'],
      [{}, 'adaptive'],
      [{ finDelayMs: 50, releasePolicy: 'adaptive' }, 'adaptive'],
    ] as const) {
      const other = new SocketRecycler(options)
      expect(other.options.releasePolicy).toBe(policy)
      await other.close()
    }
    // per socket: a finDelayMs of its own is used as is, every time (the recycler's would be 5 s)
    await using srv = await tcpServer(echoUntilFin)
    recycler = new SocketRecycler({ finDelayMs: 5000 })
    const r = recycler
    const { closeMs } = await loop(3, () => r.createConnection({ host: '127.0.0.1', port: srv.port, finDelayMs: 0 }))
    expect(Math.max(...closeMs)).toBeLessThan(1000)
    expect(r.stats()).toMatchObject({ finSentFirst: 3, peerClosedFirst: 0 })
  })
})

describe.runIf(isLinux)('tcpRttUs (TCP_INFO tcpi_rtt, what the adaptive policy bounds its waits with)', () => {
  it('reads a connected socket\'s smoothed RTT: above 0, far below a second on loopback', async () => {
    await using srv = await tcpServer(echoUntilFin)
    const socket = net.createConnection(srv.port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write('ping')
    await new Promise((resolve) => socket.once('data', resolve)) // an ACKed segment: one RTT sample
    const rtt = tcpRttUs(fdOf(socket))
    socket.destroy()
    expect(rtt).toBeGreaterThan(0)
    expect(rtt).toBeLessThan(1_000_000)
  })
})
