// Regression (issue #15, the real-path matrix): over TLS, disconnect() on a connection whose fd came
// from the idle pool sent our FIN at once, right behind QUIT, before Redis answered: the recycled
// socket had its TCP handle already, tls.connect({ socket }) wrapped that handle in C++ (TLSWrap),
// and TLS's end() became libuv's shutdown, below the recycler. Only a fresh fd (no handle yet: TLS
// over a JS stream) withheld it. The server here answers QUIT only after a while and records
// whether the client's FIN came first.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import tls from 'node:tls'
import { SocketRecycler } from '@fdrecycle/core'
import { recycledConnector } from '@fdrecycle/redis-adapter'
import { describe, expect, it } from 'vitest'
import { selfSignedCert } from '../../../../test/helpers/certs.js'
import { ended, majors, recyclingSupported, released } from '../helpers.js'

/** How long the server waits before answering QUIT: the client's FIN, if it goes first, comes meanwhile. */
const QUIT_ANSWER_DELAY_MS = 150

interface Goodbye {
  /** the client's FIN had arrived before our +OK: the server's TCP socket was in CLOSE_WAIT */
  finBeforeAnswer: boolean
}

/**
 * Whether the server's side of a connection is in CLOSE_WAIT (the client's FIN arrived). Asked of
 * the kernel: over TLS, 'end' comes with the client's close_notify, which TLS's end() sends at once.
 */
function inCloseWait(serverPort: number, clientPort: number): boolean {
  const out = execFileSync('ss', ['-Htn', 'state', 'close-wait', `( sport = :${serverPort} and dport = :${clientPort} )`], { encoding: 'utf8' })
  return out.trim() !== ''
}

/** Complete RESP commands at the head of `input` (arrays of bulk strings) and what is left over. */
function parseCommands(input: string): { commands: string[][]; rest: string } {
  const commands: string[][] = []
  let at = 0
  for (;;) {
    const head = /^\*(\d+)\r\n/.exec(input.slice(at))
    if (!head) break
    let pos = at + head[0].length
    const args: string[] = []
    for (let i = 0; i < Number(head[1]); i++) {
      const bulk = /^\$(\d+)\r\n/.exec(input.slice(pos))
      if (!bulk || input.length < pos + bulk[0].length + Number(bulk[1]) + 2) return { commands, rest: input.slice(at) }
      pos += bulk[0].length
      args.push(input.slice(pos, pos + Number(bulk[1])))
      pos += Number(bulk[1]) + 2
    }
    commands.push(args)
    at = pos
  }
  return { commands, rest: input.slice(at) }
}

/**
 * A TLS server that speaks just enough RESP for ioredis (HELLO refused: RESP2; CLIENT SETINFO, PING),
 * then answers QUIT late and closes.
 */
async function slowQuitServer(): Promise<{ port: number; goodbyes: Goodbye[]; close: () => Promise<void> }> {
  const { key, cert } = selfSignedCert()
  const goodbyes: Goodbye[] = []
  const server = tls.createServer({ key, cert, allowHalfOpen: true }, (socket) => {
    let buffered = ''
    const clientPort = socket.remotePort!
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      const { commands, rest } = parseCommands(buffered + chunk.toString('latin1'))
      buffered = rest
      for (const [name = ''] of commands) {
        const command = name.toLowerCase()
        if (command === 'hello') socket.write("-ERR unknown command 'HELLO'\r\n")
        else if (command === 'ping') socket.write('+PONG\r\n')
        else if (command === 'quit') {
          setTimeout(() => {
            goodbyes.push({ finBeforeAnswer: inCloseWait(port, clientPort) })
            socket.end('+OK\r\n')
          }, QUIT_ANSWER_DELAY_MS)
        } else socket.write('+OK\r\n')
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  return {
    port,
    goodbyes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

describe.runIf(recyclingSupported).each(majors)('$name: TLS on a reused fd', ({ Redis }) => {
  it("disconnect() withholds our FIN for the server's on a fresh and on a reused fd alike", async () => {
    const server = await slowQuitServer()
    // finDelayMs and quitTimeoutMs well above the server's delay: the FIN waits for its answer.
    const recycler = new SocketRecycler({ finDelayMs: 5000 })
    try {
      for (let i = 0; i < 4; i++) {
        const r = new Redis({
          host: '127.0.0.1', port: server.port, tls: { rejectUnauthorized: false }, enableReadyCheck: false,
          maxRetriesPerRequest: 0, retryStrategy: () => null, Connector: recycledConnector(recycler, { quitTimeoutMs: 5000 }),
        })
        expect(await r.ping()).toBe('PONG')
        r.disconnect()
        await ended(r)
        await released(recycler)
      }
      // (a parked fd may still wait for its last ACK when the next connection starts: not all reuse it)
      expect(recycler.stats()).toMatchObject({ connections: 4, finSentFirst: 0 })
      expect(recycler.stats().reusedConnections).toBeGreaterThan(0)
      expect(server.goodbyes).toEqual(Array.from({ length: 4 }, () => ({ finBeforeAnswer: false })))
    } finally {
      await recycler.close()
      await server.close()
    }
  })
})
