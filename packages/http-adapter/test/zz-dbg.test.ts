import http from 'node:http'
import { it, expect } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { RecycledAgent } from '@fdrecycle/http-adapter'
import { fetch, upstream, settled, writeChunked } from '/work/main/packages/http-adapter/test/helpers.js'
it('dbg', async () => {
  const recycler = new SocketRecycler({ maxSockets: 1, finDelayMs: 20 })
  const agent = new RecycledAgent({ recycler, keepAlive: true, maxSockets: 1 })
  await using srv = await upstream((req, res) => {
    if (req.url === '/reset') { res.writeHead(200, { 'content-length': 100_000 }); res.write('partial', () => res.socket!.resetAndDestroy()) }
    else res.end('fine')
  })
  let t = Date.now()
  await expect(fetch(`${srv.url}/reset`, agent)).rejects.toThrow()
  console.log('reset', Date.now() - t, recycler.stats()); t = Date.now()
  expect((await fetch(`${srv.url}/after`, agent)).body.toString()).toBe('fine')
  console.log('after', Date.now() - t, recycler.stats())
  agent.destroy(); await recycler.close()
})
