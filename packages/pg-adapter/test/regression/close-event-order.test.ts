// What broke: with the adapter, pg's client emits 'end' before the app's `await client.connect()`
// continuation runs; with pg alone it comes after. Same cause as tls-handshake-failure.test.ts:
// RecycledSocket#_destroy emits 'close' on process.nextTick, net.Socket from libuv's close
// callback (a later phase of the event loop), so listeners of 'close' (pg's Connection turns it
// into 'end') run earlier than they do on a plain socket.
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import { servers } from '../helpers.js'

const { user, database } = servers()

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}

describe("the order of a failed connect's rejection and pg's 'end'", () => {
  it("is the same as with pg alone (server down): the app's continuation first, then 'end'", async () => {
    const recycler = new SocketRecycler()
    const port = await closedPort()
    const order = async (withAdapter: boolean): Promise<string[]> => {
      const client = new pg.Client({ host: '127.0.0.1', port, user, database, ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const events: string[] = []
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve(void events.push('end'))))
      await client.connect().catch((e: Error & { code?: string }) => events.push(`rejected ${e.code}`))
      events.push('continuation')
      await ended
      return events
    }
    try {
      const plain = await order(false)
      const recycled = await order(true)
      expect(plain).toEqual(['rejected ECONNREFUSED', 'continuation', 'end'])
      expect(recycled).toEqual(plain)
    } finally {
      await recycler.close()
    }
  })
})
