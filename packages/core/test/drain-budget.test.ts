import { afterEach, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { AUTO_FALLBACK, AUTO_MIN, drainsOverBudget, resolveMaxDraining } from '../src/drain-budget.js'
import { neverClose, tcpServer } from '../../../test/helpers/servers.js'
import { isLinux } from '../../../test/helpers/system.js'
import { until } from './helpers.js'

describe('maxDraining (drain-budget.ts)', () => {
  it("'auto' is a quarter of the soft RLIMIT_NOFILE, at least AUTO_MIN; a number is taken as is", () => {
    expect(resolveMaxDraining('auto', () => 1024)).toBe(256)
    expect(resolveMaxDraining('auto', () => 1_048_576)).toBe(262_144)
    expect(resolveMaxDraining('auto', () => 20)).toBe(AUTO_MIN)
    expect(resolveMaxDraining(7, () => 1024)).toBe(7)
    expect(
      resolveMaxDraining('auto', () => {
        throw new Error('getrlimit EPERM')
      }),
    ).toBe(AUTO_FALLBACK)
  })

  it('names the oldest drains past the cap, in start order', () => {
    const draining = new Map([['a', 1], ['b', 2], ['c', 3], ['d', 4]])
    expect(drainsOverBudget(draining, 4)).toEqual([])
    expect(drainsOverBudget(draining, 3)).toEqual(['a'])
    expect(drainsOverBudget(draining, 1)).toEqual(['a', 'b', 'c'])
    draining.delete('a')
    draining.set('a', 5) // started again: now the newest
    expect(drainsOverBudget(draining, 2)).toEqual(['b', 'c'])
  })
})

describe.runIf(isLinux)('maxDraining with real sockets', () => {
  let recycler: SocketRecycler | undefined
  afterEach(async () => {
    await recycler?.close()
    recycler = undefined
  })

  it('past the cap the oldest drain is closed as a plain destroy() would: its peer sees EOF first', async () => {
    await using srv = await tcpServer(neverClose)
    const serverEnds: number[] = []
    srv.server.on('connection', (s) => {
      const i = srv.sockets.indexOf(s)
      s.on('end', () => serverEnds.push(i))
    })
    recycler = new SocketRecycler({ maxDraining: 2, finDelayMs: 60_000, drainTimeoutMs: 60_000 })
    for (let i = 0; i < 4; i++) {
      const s = recycler.createConnection(srv.port, '127.0.0.1')
      await new Promise((resolve) => s.once('connect', resolve))
      await until(() => srv.sockets.length === i + 1, 'the server accepted')
      s.destroy()
      await until(() => recycler!.stats().draining >= Math.min(i + 1, 2), 'the drain started')
    }
    // finDelayMs (60 s) would hold all four; the cap kept the two newest
    await until(() => serverEnds.length === 2, 'the two oldest closed')
    expect(serverEnds).toEqual([0, 1])
    expect(recycler.stats()).toMatchObject({ draining: 2, drainsShed: 2, fdsClosed: 2 })
    expect(srv.errors).toEqual([]) // a FIN, not an RST: nothing was left unread
  })

  it('close() does not wait for drains whose FIN is out, and closes them', async () => {
    await using srv = await tcpServer(neverClose)
    recycler = new SocketRecycler({ finDelayMs: 0, drainTimeoutMs: 60_000, closeTimeoutMs: 60_000 })
    const s = recycler.createConnection(srv.port, '127.0.0.1')
    await new Promise((resolve) => s.once('connect', resolve))
    s.destroy()
    await until(() => recycler!.stats().draining === 1, 'the drain started')
    const t0 = performance.now()
    await recycler.close()
    // closeTimeoutMs (60 s) would be waited out for a drain still counted as busy
    expect(performance.now() - t0).toBeLessThan(5000)
    expect(recycler.stats()).toMatchObject({ draining: 0, fdsClosed: 1 })
  })
})

