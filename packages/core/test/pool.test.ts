import diagnosticsChannel from 'node:diagnostics_channel'
import { describe, expect, it } from 'vitest'
import { AcquireTimeoutError, SocketRecycler } from '@fdrecycle/core'
import { lineEcho, neverClose, tcpServer } from '../../../test/helpers/servers.js'
import { isLinux } from '../../../test/helpers/system.js'
import { exchange, settle, until } from './helpers.js'

describe.runIf(isLinux)('the fd pool', () => {
  it('maxSockets caps fds per family; a connect beyond waits, then fails with a typed error after acquireTimeoutMillis', async () => {
    const recycler = new SocketRecycler({ maxSockets: 2, acquireTimeoutMillis: 100, closeTimeoutMs: 0 })
    await using srv = await tcpServer(neverClose)
    const a = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const b = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await Promise.all([a, b].map((s) => new Promise((resolve) => s.once('connect', resolve))))
    const c = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const err = await new Promise<Error>((resolve) => c.once('error', resolve))
    expect(err).toBeInstanceOf(AcquireTimeoutError)
    expect(err.message).toMatch(/acquireTimeoutMillis \(100 ms\).*maxSockets \(2\)/)
    expect(recycler.stats()).toMatchObject({ active: 2, fdsCreated: 2 })
    // a socket that waits gets the fd a finished one gives back
    const d = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    a.resetAndDestroy()
    await new Promise((resolve) => d.once('connect', resolve))
    expect(recycler.stats()).toMatchObject({ fdsCreated: 2, reusedConnections: 1 })
    b.destroy()
    d.destroy()
    await recycler.close()
    expect(recycler.stats().fdsClosed).toBe(2)
  })

  it('maxReuses closes an fd after that many connections', async () => {
    const recycler = new SocketRecycler({ maxReuses: 3 })
    await using srv = await tcpServer(lineEcho)
    for (let i = 0; i < 7; i++) {
      await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'x\nbye\n', true)
      await settle()
    }
    const s = recycler.stats()
    expect(s.fdsCreated).toBe(3) // 3 + 3 + 1 connections
    expect(s.fdsClosed).toBe(2)
    await recycler.close()
  })

  it('maxIdle bounds the idle fds kept per family; the rest are closed on release', async () => {
    const recycler = new SocketRecycler({ maxIdle: 2 })
    await using srv = await tcpServer(lineEcho)
    await Promise.all(
      Array.from({ length: 6 }, () => exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'x\nbye\n', true)),
    )
    await until(() => recycler.stats().active + recycler.stats().draining === 0, 'all released')
    expect(recycler.stats()).toMatchObject({ fdsCreated: 6, fdsClosed: 4, idle: 2 })
    await recycler.close()
  })

  it('idle fds are closed after idleTimeoutMs', async () => {
    const recycler = new SocketRecycler({ idleTimeoutMs: 100 })
    const closed: unknown[] = []
    const onClosed = (m: unknown) => closed.push(m)
    diagnosticsChannel.subscribe('fdrecycle:fd:closed', onClosed)
    try {
      await using srv = await tcpServer(lineEcho)
      await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'x\nbye\n', true)
      await until(() => recycler.stats().fdsClosed === 1, 'the idle eviction', 5000)
      expect(recycler.stats()).toMatchObject({ idle: 0, fdsCreated: 1 })
      expect(closed).toHaveLength(1)
    } finally {
      diagnosticsChannel.unsubscribe('fdrecycle:fd:closed', onClosed)
      await recycler.close()
    }
  })

  it('minIdle prewarms unconnected fds that the first connections use', async () => {
    const recycler = new SocketRecycler({ minIdle: 2 })
    await until(() => recycler.stats().idle === 4, 'prewarm of both families')
    expect(recycler.stats().fdsCreated).toBe(4)
    await using srv = await tcpServer(lineEcho)
    const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'x\nbye\n', true)
    expect(r.data).toBe('x\nbye\n')
    await settle()
    expect(recycler.stats().fdsCreated).toBe(4)
    await recycler.close()
    expect(recycler.stats()).toMatchObject({ fdsClosed: 4, idle: 0 })
  })

  it('close() with sockets in use and draining finishes within closeTimeoutMs and closes every fd', async () => {
    const recycler = new SocketRecycler({ closeTimeoutMs: 100, finDelayMs: 10_000 })
    await using srv = await tcpServer(neverClose)
    const inUse = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    const leaving = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    await Promise.all([inUse, leaving].map((s) => new Promise((resolve) => s.once('connect', resolve))))
    leaving.destroy()
    await until(() => recycler.stats().draining === 1, 'the drain to start')
    const errors: Error[] = []
    inUse.on('error', (e) => errors.push(e))
    const started = Date.now()
    await recycler.close()
    expect(Date.now() - started).toBeLessThan(2000)
    expect(recycler.stats()).toMatchObject({ active: 0, draining: 0, idle: 0, fdsCreated: 2, fdsClosed: 2 })
    expect(inUse.destroyed).toBe(true)
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_FDRECYCLE_CLOSED'])
  })

  it('publishes diagnostics only to subscribers', async () => {
    const recycler = new SocketRecycler()
    const seen: string[] = []
    const onTransition = (m: unknown) => seen.push(`${(m as { from: string }).from}->${(m as { to: string }).to}`)
    diagnosticsChannel.subscribe('fdrecycle:fd:transition', onTransition)
    try {
      await using srv = await tcpServer(lineEcho)
      await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'x\nbye\n', true)
      await settle()
      expect(seen).toEqual(['fresh->connecting', 'connecting->open', 'open->awaiting-eof', 'awaiting-eof->finished', 'finished->parked'])
    } finally {
      diagnosticsChannel.unsubscribe('fdrecycle:fd:transition', onTransition)
      await recycler.close()
    }
  })
})
