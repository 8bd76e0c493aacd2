#!/usr/bin/env node
// The backends of the fanout scenario, in one process: on each loopback address given, one port
// (the same number everywhere) serving either the goodbye line protocol (goodbye-server.mjs: the
// server closes after "QUIT") or HTTP answering `Connection: close` (the server closes first).
// Addresses alternate: even index goodbye, odd index HTTP. Prints the port, serves until killed.
//   node fanout-server.mjs 127.0.10.1 127.0.10.2 ...
import http from 'node:http'
import { once } from 'node:events'
import { goodbyeServer } from './goodbye-server.mjs'

const hosts = process.argv.slice(2)
if (hosts.length === 0) {
  process.stderr.write('usage: fanout-server.mjs <address>...\n')
  process.exit(2)
}
const body = Buffer.from('hello from a backend\n')

async function httpServer(host, port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, connection: 'close' })
    res.end(body)
  })
  server.keepAliveTimeout = 0
  server.listen({ port, host, backlog: 4096 })
  await once(server, 'listening')
  return server
}

let port = 0
for (let i = 0; i < hosts.length; i++) {
  const server = i % 2 === 0 ? await goodbyeServer(hosts[i], port) : await httpServer(hosts[i], port)
  port = server.address().port
}
process.stdout.write(`${port}\n`)
process.on('SIGTERM', () => process.exit(0))
