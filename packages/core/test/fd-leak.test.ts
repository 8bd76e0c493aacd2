import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { blackholeListener } from '../../../test/helpers/blackhole.js'
import { closedPort, greetAndClose, lineEcho, neverClose, tcpServer } from '../../../test/helpers/servers.js'
import { isLinux, openSockets, socketsSince } from '../../../test/helpers/system.js'

const CYCLES = Number(process.env.FDRECYCLE_SOAK ? 50_000 : 2_500)
const IN_FLIGHT = 16

type Outcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'connect-timeout' | 'error'

/** `npm run soak` runs these much longer. */
const SOAK_TIMEOUT = process.env.FDRECYCLE_SOAK ? 1_800_000 : 60_000

describe.runIf(isLinux)('no fd leak', () => {
  let blackhole: ReturnType<typeof blackholeListener> | undefined
  beforeAll(() => {
    blackhole = blackholeListener()
  })
  afterAll(() => blackhole?.close())

  it(`${CYCLES} cycles of good, refused, reset and timed-out connections end with the fd count at baseline`, async () => {
    // Servers run in this process too: the baseline is taken before them, the count after closing them.
    const baseline = openSockets()
    await using greet = await tcpServer(greetAndClose)
    await using echo = await tcpServer(lineEcho)
    await using resetter = await tcpServer((s) => s.resetAndDestroy())
    await using silent = await tcpServer(neverClose)
    const refused = await closedPort()
    // Fill the blackhole's accept queue so that later SYNs are dropped.
    const filler = net.connect({ host: '127.0.0.1', port: blackhole!.port })
    filler.on('error', () => {})
    await new Promise((resolve) => filler.once('connect', resolve))

    const recycler = new SocketRecycler({ finDelayMs: 20, drainTimeoutMs: 50, onDrainTimeout: 'reset' })
    const outcomes = new Map<Outcome, number>()
    const wrongBytes: string[] = []

    const one = (i: number) =>
      new Promise<void>((resolve) => {
        const kind = i % 6
        const port = [greet.port, echo.port, refused, resetter.port, silent.port, blackhole!.port][kind]!
        const socket = recycler.createConnection({ host: '127.0.0.1', port })
        let outcome: Outcome = 'ok'
        let data = ''
        socket.setEncoding('utf8')
        socket.on('data', (d: string) => (data += d))
        socket.on('connect', () => {
          if (kind === 1) socket.end(`m${i}\nbye\n`)
        })
        if (kind === 4 || kind === 5) {
          socket.setTimeout(5, () => {
            outcome = kind === 4 ? 'timeout' : 'connect-timeout'
            socket.destroy()
          })
        }
        socket.on('error', (err: NodeJS.ErrnoException) => {
          outcome = err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' ? 'reset' : 'error'
        })
        socket.on('close', () => {
          if (kind === 0 && outcome === 'ok' && !/^hello \d+\n$/.test(data)) wrongBytes.push(data)
          if (kind === 1 && outcome === 'ok' && data !== `m${i}\nbye\n`) wrongBytes.push(data)
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
          resolve()
        })
      })

    let next = 0
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < CYCLES) await one(next++)
      }),
    )
    // Drains (silent peer) end with the reset policy; wait for them, bounded.
    const deadline = Date.now() + 10_000
    while (recycler.stats().draining + recycler.stats().active > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const stats = recycler.stats()
    expect(stats.fdsCreated).toBe(stats.fdsClosed + stats.idle + stats.active + stats.draining)
    expect(stats.connections).toBe(CYCLES)
    expect(stats.fdsCreated).toBeLessThan(CYCLES / 10)
    expect(wrongBytes).toEqual([])
    expect(outcomes.get('ok')).toBe(Array.from({ length: CYCLES }, (_, i) => i % 6).filter((kind) => kind < 2).length)
    expect(outcomes.get('refused')).toBeGreaterThan(0)
    expect((outcomes.get('reset') ?? 0) + (outcomes.get('ok') ?? 0)).toBeGreaterThan(0)
    expect(outcomes.get('timeout')).toBeGreaterThan(0)
    expect(outcomes.get('connect-timeout')).toBeGreaterThan(0)
    expect(outcomes.get('error') ?? 0).toBe(0)

    await recycler.close()
    const after = recycler.stats()
    expect(after).toMatchObject({ idle: 0, active: 0, draining: 0 })
    expect(after.fdsClosed).toBe(after.fdsCreated)
    filler.destroy()
    await new Promise((resolve) => filler.once('close', resolve))
    await Promise.all([greet, echo, resetter, silent].map((s) => s.close()))
    expect(socketsSince(baseline)).toBe(0)
  }, SOAK_TIMEOUT)
})
