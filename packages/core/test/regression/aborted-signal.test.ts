import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'

// What broke: an already-aborted `signal` makes the stream constructor destroy the socket from
// inside super(), before the subclass's private fields exist: createConnection threw "Cannot read
// private member #attempts" (in mode 'passthrough' too), where net emits an AbortError.
describe.runIf(isLinux)('regression: an already-aborted signal', () => {
  /** Events up to 'connect' (net still connects after the constructor's abort; so must we). */
  async function events(make: (o: net.NetConnectOpts) => net.Socket, port: number): Promise<string[]> {
    const seen: string[] = []
    const s = make({ host: '127.0.0.1', port, signal: AbortSignal.abort() } as net.NetConnectOpts)
    s.on('error', (e: NodeJS.ErrnoException) => seen.push(`error:${e.name}:${e.code}`))
    s.on('close', (hadError) => seen.push(`close:${hadError}`))
    await new Promise<void>((resolve) => s.once('connect', () => {
      seen.push('connect')
      resolve()
    }))
    const closed = new Promise((resolve) => s.once('close', resolve))
    s.destroy()
    await closed
    return seen
  }

  for (const mode of ['auto', 'passthrough'] as const) {
    it(`emits AbortError as net does (mode ${mode})`, async () => {
      await using srv = await tcpServer(lineEcho)
      const recycler = new SocketRecycler({ mode })
      const plain = await events((o) => net.createConnection(o), srv.port)
      expect(plain[0]).toBe('error:AbortError:ABORT_ERR')
      expect(await events((o) => recycler.createConnection(o), srv.port)).toEqual(plain)
      await recycler.close()
    })
  }
})
