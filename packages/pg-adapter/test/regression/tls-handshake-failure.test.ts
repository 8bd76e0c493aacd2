// What broke: a TLS handshake that fails in the client (an unverifiable certificate) gave pg
// "Connection terminated unexpectedly" instead of the certificate error, then crashed the process
// (SIGSEGV in TLSWrap::ClearIn -> SSL_write on a freed SSL).
// Why: RecycledSocket#_destroy emits 'close' on process.nextTick. The TLS layer destroys its parent
// socket from inside TLSWrap::OnStreamRead (the handshake's verify step runs there); the nextTick
// queue drains before that C++ frame returns, so the parent's 'close' runs the TLS socket's
// destroySSL() under TLSWrap's feet, and reaches pg before the TLS socket's 'error'. net.Socket
// emits 'close' from libuv's close callback, after the I/O callback has returned.
// Kept in its own file: while the bug is there, the crash takes down only this file's worker.
import { describe, expect, it } from 'vitest'
import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import { errorShape, expectRecycled, openSockets, released, servers, socketsSince, tcpConfig, until } from '../helpers.js'

const { tls } = servers()

describe('TLS handshake failing in the client over a recycled socket', () => {
  it('an unverifiable certificate fails as with pg alone, and the fd goes back to the pool', async () => {
    const recycler = new SocketRecycler()
    const baseline = openSockets()
    const attempt = async (withAdapter: boolean): Promise<unknown> => {
      // ssl: true verifies against the system CAs: the self-signed certificate is refused.
      const client = new pg.Client({ ...tcpConfig(tls), ssl: true, ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      return client.connect().then(() => null, (e: unknown) => e)
    }
    try {
      const plainErr = await attempt(false)
      const recycledErr = await attempt(true)
      expect((plainErr as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
      expect(errorShape(recycledErr)).toEqual(errorShape(plainErr))
      await released(recycler)
      expectRecycled(recycler.stats(), { connections: 1, recycled: 1, fdsClosed: 0, idle: 1 })
    } finally {
      await recycler.close()
    }
    await until(() => socketsSince(baseline) === 0, 'fds back at baseline')
  })
})
