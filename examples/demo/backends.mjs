// The demo's backends, run in a child process of their own (as a service's backends are other
// processes): a line protocol that closes after the client's goodbye (as PostgreSQL after
// Terminate, Redis after QUIT), or HTTP answering every request with `Connection: close`. In both
// the server closes first, so a client that waits for the server's FIN keeps no TIME_WAIT.
//
// Forked by index.mjs with an IPC channel: `fork('backends.mjs', ['line' | 'http', 'addr,addr,...'])`.
// It listens once on each address (port 0), sends `{ listeners: [{ host, port }] }`, serves until
// the parent goes away (the IPC channel closes) or it is killed.
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'

/** "GET k\n" → "+OK GET k\n"; "QUIT\n" → "+BYE\n" and close. */
function lineServer() {
  return net.createServer((socket) => {
    socket.on('error', () => {})
    socket.setEncoding('utf8')
    let buf = ''
    socket.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line === 'QUIT') return void socket.end('+BYE\n')
        socket.write(`+OK ${line}\n`)
      }
    })
    socket.on('end', () => socket.end())
  })
}

/** GET / → 200 "ok\n" with `Connection: close`; node:http closes after the response. */
function httpServer() {
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, connection: 'close' })
    res.end('ok\n')
  })
  server.keepAliveTimeout = 0
  return server
}

async function listen(kind, host) {
  const server = kind === 'http' ? httpServer() : lineServer()
  server.listen({ port: 0, host, backlog: 1024 })
  await once(server, 'listening')
  return server
}

/**
 * Listens on each of `hosts`. An address this machine does not accept (some containers route only
 * 127.0.0.1) falls back to 127.0.0.1 on a port of its own: the pair host:port stays distinct.
 */
export async function startBackends(kind, hosts) {
  const servers = []
  for (const host of hosts) {
    try {
      servers.push(await listen(kind, host))
    } catch (err) {
      if (err.code !== 'EADDRNOTAVAIL') throw err
      servers.push(await listen(kind, '127.0.0.1'))
    }
  }
  return servers
}

if (process.send && import.meta.url === `file://${process.argv[1]}`) {
  const [kind, list] = process.argv.slice(2)
  if (kind !== 'line' && kind !== 'http') throw new Error(`backends.mjs: unknown kind ${kind}`)
  const servers = await startBackends(kind, list.split(','))
  process.send({ listeners: servers.map((s) => ({ host: s.address().address, port: s.address().port })) })
  process.on('disconnect', () => process.exit(0)) // the demo ended (or died): nothing outlives it
  process.on('SIGTERM', () => process.exit(0))
}
