// The server side of the fault tests, run inside namespace B: `ip netns exec B node server-agent.mjs HOST`.
// A client opens with one line, `<behaviour> <size> <seed>\n`; the server answers `size` bytes of
// pattern(seed), then:
//   close  ends at once (the peer closes first: pg Terminate, Redis QUIT, HTTP Connection: close)
//   wait   ends only after the client's FIN (the client closes first)
// Every connection is tracked: errors (ECONNRESET shows an RST from the client), EOF, close.
import net from 'node:net'
import { pattern, serve, tcpCounters, tcpSockets } from './agent-protocol.mjs'

const host = process.argv[2] ?? '127.0.0.1'
const conns = []
let openCount = 0
let onIdle = null

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  const conn = { remotePort: socket.remotePort, behaviour: null, gotEnd: false, error: null, closed: false, hadError: false }
  conns.push(conn)
  openCount++
  let head = Buffer.alloc(0)
  socket.on('data', (chunk) => {
    if (conn.behaviour !== null) return
    head = Buffer.concat([head, chunk])
    const nl = head.indexOf(10)
    if (nl < 0) return
    const [behaviour, size, seed] = head.subarray(0, nl).toString('latin1').split(' ')
    conn.behaviour = behaviour
    const body = pattern(Number(seed), Number(size))
    if (behaviour === 'close') socket.end(body)
    else socket.write(body)
  })
  socket.on('end', () => {
    conn.gotEnd = true
    if (conn.behaviour === 'wait' || conn.behaviour === null) socket.end()
    // 'close' has ended already: Node destroys the socket once both sides have.
  })
  socket.on('error', (err) => {
    conn.error = err.code ?? err.message
  })
  socket.on('close', (hadError) => {
    conn.closed = true
    conn.hadError = hadError
    openCount--
    if (openCount === 0 && onIdle) onIdle()
  })
})

function state() {
  return {
    accepted: conns.length,
    open: openCount,
    errors: conns.filter((c) => c.error !== null).map((c) => ({ remotePort: c.remotePort, error: c.error, behaviour: c.behaviour })),
    openConns: conns.filter((c) => !c.closed),
  }
}

server.listen(0, host, () => {
  serve(
    {
      state,
      snmp: () => tcpCounters(),
      sockets: () => tcpSockets(),
      /** Resolves once every accepted connection has closed, or after timeoutMs with what is left. */
      waitClosed: ({ timeoutMs = 5000 }) =>
        new Promise((resolve) => {
          if (openCount === 0) return resolve({ closed: true, ...state() })
          const timer = setTimeout(() => {
            onIdle = null
            resolve({ closed: false, ...state(), sockets: tcpSockets() })
          }, timeoutMs)
          onIdle = () => {
            clearTimeout(timer)
            onIdle = null
            resolve({ closed: true, ...state() })
          }
        }),
    },
    { port: server.address().port },
  )
})
