import dns from 'node:dns'
import net from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { greetAndClose, tcpServer } from '../../../../test/helpers/servers.js'
import { isLinux } from '../../../../test/helpers/system.js'

// What broke: connect options that net rejects were accepted (timeout -1, '100', true, {};
// autoSelectFamilyAttemptTimeout -5, 'x'), or rejected with another error (lookup 'x': a code-less
// TypeError; wrong port types: the same code, another message); a lookup answering 'bad' or family
// 100 gave a plain "Invalid IP address" TypeError; socket.connect(net._normalizeArgs(...)) threw
// ERR_MISSING_ARGS. Each case is run through net and through the recycler, and must come out alike.
describe.runIf(isLinux)('regression: connect arguments are checked as net checks them', () => {
  const recycler = new SocketRecycler()
  afterAll(() => recycler.close())
  type Make = (o: Record<string, unknown>) => net.Socket
  const plain: Make = (o) => net.createConnection(o as net.NetConnectOpts)
  const recycled: Make = (o) => recycler.createConnection(o as net.NetConnectOpts)

  function thrown(make: Make, options: Record<string, unknown>): string {
    try {
      const s = make(options)
      s.destroy()
      return 'no error'
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      return `${err.name} ${err.code} ${err.message}`
    }
  }

  const port = 1 // never reached: every case throws first
  const cases: Array<[string, Record<string, unknown>]> = [
    ['timeout -1', { port, host: '127.0.0.1', timeout: -1 }],
    ["timeout '100'", { port, host: '127.0.0.1', timeout: '100' }],
    ['timeout true', { port, host: '127.0.0.1', timeout: true }],
    ['timeout {}', { port, host: '127.0.0.1', timeout: {} }],
    ['autoSelectFamilyAttemptTimeout -5', { port, host: '127.0.0.1', autoSelectFamilyAttemptTimeout: -5 }],
    ["autoSelectFamilyAttemptTimeout 'x'", { port, host: '127.0.0.1', autoSelectFamilyAttemptTimeout: 'x' }],
    ['autoSelectFamilyAttemptTimeout 1.5', { port, host: 'localhost', autoSelectFamilyAttemptTimeout: 1.5 }],
    ["autoSelectFamily 'yes'", { port, host: 'localhost', autoSelectFamily: 'yes' }],
    ["lookup 'x'", { port, host: 'localhost', lookup: 'x' }],
    ['port true', { port: true, host: '127.0.0.1' }],
    ['port {}', { port: {}, host: '127.0.0.1' }],
    ['port null', { port: null, host: '127.0.0.1' }],
    ['port -1', { port: -1, host: '127.0.0.1' }],
    ['port 70000', { port: 70000, host: '127.0.0.1' }],
    ["port ''", { port: '', host: '127.0.0.1' }],
    ['port 1.5', { port: 1.5, host: '127.0.0.1' }],
    ['no port', { host: '127.0.0.1' }],
  ]
  for (const [name, options] of cases) {
    it(`${name}: the same error as net`, () => {
      const expected = thrown(plain, options)
      expect(expected).not.toBe('no error')
      expect(thrown(recycled, options)).toBe(expected)
    })
  }

  /** Every event up to 'close', errors by name, code and message. */
  function events(make: Make, options: Record<string, unknown>): Promise<string[]> {
    const seen: string[] = []
    const s = make(options)
    s.on('lookup', (err: Error | null, address: unknown, family: unknown) => seen.push(`lookup ${err?.message} ${address} ${family}`))
    s.on('connect', () => seen.push('connect'))
    s.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.name} ${e.code} ${e.message}`))
    return new Promise((resolve) => s.on('close', (hadError) => {
      seen.push(`close ${hadError}`)
      resolve(seen)
    }))
  }

  const answer = (address: string, family: number) =>
    ((_host: string, options: dns.LookupOptions, cb: (...args: unknown[]) => void) => {
      if (options.all) cb(null, [{ address, family }])
      else cb(null, address, family)
    }) as unknown as typeof dns.lookup

  for (const autoSelectFamily of [false, true]) {
    for (const [address, family] of [['bad', 4], ['127.0.0.1', 100], ['::1', 100]] as const) {
      it(`a lookup answering ${address} family ${family} (autoSelectFamily ${autoSelectFamily}): the same events as net`, async () => {
        const options = { host: 'db.example', port: 5432, lookup: answer(address, family), autoSelectFamily }
        const expected = await events(plain, options)
        expect(expected.some((e) => e.startsWith('error '))).toBe(true)
        expect(await events(recycled, options)).toEqual(expected)
      })
    }
  }

  it('socket.connect(net._normalizeArgs(...)) connects, as with net', async () => {
    await using srv = await tcpServer(greetAndClose)
    const normalize = (net as unknown as { _normalizeArgs(args: unknown[]): unknown })._normalizeArgs
    for (const socket of [new net.Socket(), recycler.createSocket()]) {
      const connected = new Promise<void>((resolve) => socket.connect(normalize([{ port: srv.port, host: '127.0.0.1' }, resolve])))
      await connected
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.destroy()
      await closed
    }
  })
})
