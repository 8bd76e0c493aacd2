// The demo's embedded backends, in this process on loopback: a line protocol that closes after the
// client's goodbye (as PostgreSQL after Terminate, Redis after QUIT) and HTTP answering every
// request with `Connection: close`. In both the server closes first, so a client that waits for
// the server's FIN keeps no TIME_WAIT.
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'

/** "GET k\n" → "+OK GET k\n"; "QUIT\n" → "+BYE\n" and close. */
export async function lineBackend(host = '127.0.0.1') {
  const server = net.createServer((socket) => {
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
  })
  server.listen({ port: 0, host, backlog: 1024 })
  await once(server, 'listening')
  return server
}

/** GET / → 200 "ok\n" with `Connection: close`; node:http closes after the response. */
export async function httpBackend(host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, connection: 'close' })
    res.end('ok\n')
  })
  server.keepAliveTimeout = 0
  server.listen({ port: 0, host, backlog: 1024 })
  await once(server, 'listening')
  return server
}

/**
 * `count` line backends and `count` HTTP backends for one mode. Each mode gets its own ports, so
 * that `ss` filtered on them tells whose TIME_WAIT is whose.
 */
export async function backendSet(count) {
  const line = await Promise.all(Array.from({ length: count }, () => lineBackend()))
  const web = await Promise.all(Array.from({ length: count }, () => httpBackend()))
  return {
    line: line.map((s) => s.address().port),
    http: web.map((s) => s.address().port),
    close: () => Promise.all([...line, ...web].map((s) => new Promise((resolve) => s.close(resolve)))),
    servers: [...line, ...web],
  }
}
