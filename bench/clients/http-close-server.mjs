#!/usr/bin/env node
// A node:http server that answers every request with `Connection: close` (and so closes first),
// for the HTTP churn against a Node server in its own process. Listens on <count> ports of
// <host>, prints them on one line, serves until killed.
//   node http-close-server.mjs [host] [count]
import http from 'node:http'
import { once } from 'node:events'

const host = process.argv[2] ?? '127.0.0.1'
const count = Number(process.argv[3] ?? 1)
const body = Buffer.from('hello from node\n')
const servers = []
for (let i = 0; i < count; i++) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, connection: 'close' })
    res.end(body)
  })
  server.keepAliveTimeout = 0
  server.listen({ port: 0, host, backlog: 4096 })
  await once(server, 'listening')
  servers.push(server)
}
process.stdout.write(`${servers.map((s) => s.address().port).join(' ')}\n`)
process.on('SIGTERM', () => process.exit(0))
