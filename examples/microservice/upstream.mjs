// The upstream HTTP service the microservice calls, in a process of its own: GET /price/<id>
// answers {"id":..,"price":..} with `Connection: close` (as many legacy backends and some load
// balancers do), so every fetch() needs a new connection and the server closes first.
//
// Forked by run.mjs with an IPC channel and a list of addresses: it listens on each (port 0),
// sends `{ listeners: [{ host, port }] }`, and exits when its parent goes away.
import { once } from 'node:events'
import http from 'node:http'

function handler(req, res) {
  req.resume()
  const m = /^\/price\/(\d+)$/.exec(req.url ?? '')
  if (!m) {
    res.writeHead(404, { connection: 'close' }).end()
    return
  }
  const body = JSON.stringify({ id: Number(m[1]), price: (Number(m[1]) % 997) + 0.5 })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' })
  res.end(body)
}

export async function startUpstream(hosts) {
  const servers = []
  for (const host of hosts) {
    const server = http.createServer(handler)
    server.keepAliveTimeout = 0
    server.listen({ port: 0, host, backlog: 1024 })
    await once(server, 'listening')
    servers.push(server)
  }
  return servers
}

if (process.send && import.meta.url === `file://${process.argv[1]}`) {
  const hosts = (process.argv[2] ?? '127.0.0.1').split(',')
  const servers = await startUpstream(hosts)
  process.send({ listeners: servers.map((s) => ({ host: s.address().address, port: s.address().port })) })
  process.on('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
}
