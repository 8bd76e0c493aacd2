#!/usr/bin/env node
// A line-protocol server that closes after the client's goodbye, as PostgreSQL does after
// Terminate and Redis after QUIT: "GET x\n" is answered "+OK GET x\n"; on "QUIT\n" (or the
// client's EOF) it closes. Listens on <count> ports of <host>, prints them on one line, serves
// until killed.
//   node goodbye-server.mjs [host] [count]
import net from 'node:net'
import { once } from 'node:events'

/** One goodbye server on host:port (0: any free port). */
export async function goodbyeServer(host = '127.0.0.1', port = 0) {
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
        if (line === 'QUIT') {
          socket.end('+BYE\n') // the server closes after the goodbye: its side keeps the TIME_WAIT
          return
        }
        socket.write(`+OK ${line}\n`)
      }
    })
    socket.on('end', () => socket.end())
  })
  server.listen({ port, host, backlog: 4096 })
  await once(server, 'listening')
  return server
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const host = process.argv[2] ?? '127.0.0.1'
  const count = Number(process.argv[3] ?? 1)
  const servers = []
  for (let i = 0; i < count; i++) servers.push(await goodbyeServer(host, 0))
  process.stdout.write(`${servers.map((s) => s.address().port).join(' ')}\n`)
  process.on('SIGTERM', () => process.exit(0))
}
