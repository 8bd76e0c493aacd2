import { createRequire } from 'node:module'
import net from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../test/helpers/servers.js'
import { fdCount, isLinux } from '../../../test/helpers/system.js'
import { exchange, settle } from './helpers.js'

const require = createRequire(import.meta.url)

/** getrlimit/setrlimit(RLIMIT_NOFILE) on this process (vitest runs each test file in its own). */
function nofileLimit(): { get(): bigint; set(soft: bigint): void } {
  const koffi = require('koffi') as typeof import('koffi')
  const lib = koffi.load('libc.so.6')
  const getrlimit = lib.func('int getrlimit(int, void *)')
  const setrlimit = lib.func('int setrlimit(int, void *)')
  const RLIMIT_NOFILE = 7
  const buf = Buffer.alloc(16)
  return {
    get() {
      getrlimit(RLIMIT_NOFILE, buf)
      return buf.readBigUInt64LE(0)
    },
    set(soft) {
      getrlimit(RLIMIT_NOFILE, buf)
      buf.writeBigUInt64LE(soft, 0)
      if (setrlimit(RLIMIT_NOFILE, buf) !== 0) throw new Error(`setrlimit: errno ${koffi.errno()}`)
    },
  }
}

async function closeAll(sockets: net.Socket[]): Promise<void> {
  await Promise.all(
    sockets.map((s) => (s.closed ? undefined : new Promise((resolve) => s.once('close', resolve).destroy()))),
  )
}

/** Opens connections until one fails; returns the failure and the sockets to close. */
async function exhaust(make: () => net.Socket): Promise<{ error: NodeJS.ErrnoException; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  for (let i = 0; i < 1000; i++) {
    const s = make()
    sockets.push(s)
    const outcome = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      s.once('connect', () => resolve(null))
      s.once('error', (err) => resolve(err))
    })
    if (outcome) return { error: outcome, sockets }
  }
  throw new Error('no EMFILE within 1000 connections')
}

describe.runIf(isLinux)('EMFILE at a low ulimit -n', () => {
  const limit = nofileLimit()
  const original = limit.get()
  afterAll(() => limit.set(original))

  it('surfaces as the same error a plain socket gives, leaks nothing, and the pool recovers', async () => {
    await using srv = await tcpServer(lineEcho)
    const recycler = new SocketRecycler()
    // warm the recycler up (probe, koffi) before counting
    await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'w\nbye\n', true)
    await settle()
    await settle()
    const baseline = fdCount()
    // Room for 30 more fds: each connection costs 2 here (client and server side in this process).
    limit.set(BigInt(baseline + 30))
    try {
      const plain = await exhaust(() => net.connect({ host: '127.0.0.1', port: srv.port }))
      for (const s of plain.sockets) s.destroy()
      await closeAll(srv.sockets)
      const recycled = await exhaust(() => recycler.createConnection({ host: '127.0.0.1', port: srv.port }))
      expect(recycled.error.code).toBe('EMFILE')
      expect(recycled.error.code).toBe(plain.error.code)
      expect(recycled.error.syscall).toBe(plain.error.syscall)
      expect(recycled.error.message).toBe(plain.error.message)
      // free the fds: the recycler recovers without intervention
      for (const s of recycled.sockets) s.destroy()
      await closeAll(srv.sockets)
      await settle()
      await settle()
      const again = await exchange(recycler.createConnection({ host: '127.0.0.1', port: srv.port }), 'again\nbye\n', true)
      expect(again.error).toBeNull()
      expect(again.data).toBe('again\nbye\n')
    } finally {
      limit.set(original)
    }
    await recycler.close()
    await closeAll(srv.sockets)
    const stats = recycler.stats()
    expect(stats.fdsClosed).toBe(stats.fdsCreated)
    expect(fdCount()).toBeLessThanOrEqual(baseline)
  })
})
