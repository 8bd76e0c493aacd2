import { describe, expect, it } from 'vitest'
import { SocketRecycler, UnsupportedError, isRecyclingSupported, recyclingSupport } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { exchange, settle } from './helpers.js'

// In a file of its own: the support probe runs once per module graph, and must run here first.
describe('forced fallback', () => {
  it("where recycling is unsupported (forced with FDRECYCLE_DISABLE=1), 'auto' falls back and 'recycle' throws", async () => {
    // The probe runs once per process and module graph; this file's own graph is fresh.
    const before = process.env.FDRECYCLE_DISABLE
    process.env.FDRECYCLE_DISABLE = '1'
    try {
      expect(isRecyclingSupported()).toBe(false)
      expect(recyclingSupport().reason).toMatch(/FDRECYCLE_DISABLE/)
      expect(() => new SocketRecycler({ mode: 'recycle' })).toThrow(UnsupportedError)
      const recycler = new SocketRecycler()
      await using srv = await tcpServer(lineEcho)
      for (let i = 0; i < 3; i++) {
        const r = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), `m${i}\nbye\n`, true)
        expect(r.data).toBe(`m${i}\nbye\n`)
        await settle()
      }
      expect(recycler.stats()).toMatchObject({ mode: 'passthrough', connections: 3, fdsCreated: 3, fdsClosed: 3 })
      await recycler.close()
    } finally {
      if (before === undefined) delete process.env.FDRECYCLE_DISABLE
      else process.env.FDRECYCLE_DISABLE = before
    }
  })
})
