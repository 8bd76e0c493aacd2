import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import net from 'node:net'

export type Behaviour = (socket: net.Socket, server: TrackedServer) => void

export interface TrackedServer extends AsyncDisposable {
  readonly server: net.Server
  readonly port: number
  readonly host: string
  /** Server-side sockets, open or closed, in accept order. */
  readonly sockets: net.Socket[]
  /** Errors seen on server-side sockets (ECONNRESET would show a peer's RST). */
  readonly errors: Error[]
  /** The client port of each accepted connection, read at accept (for timeWaitCount's `peers`). */
  readonly clientPorts: number[]
  close(): Promise<void>
}

/** A loopback TCP server on port 0 that tracks its sockets; `await using srv = await tcpServer(...)`. */
export async function tcpServer(behaviour: Behaviour, host = '127.0.0.1'): Promise<TrackedServer> {
  const sockets: net.Socket[] = []
  const errors: Error[] = []
  const clientPorts: number[] = []
  const server = net.createServer({ allowHalfOpen: true })
  const tracked: TrackedServer = {
    server,
    port: 0,
    host,
    sockets,
    errors,
    clientPorts,
    async close() {
      for (const s of sockets) s.destroy()
      if (server.listening) {
        server.close()
        await once(server, 'close')
      }
    },
    async [Symbol.asyncDispose]() {
      await tracked.close()
    },
  }
  server.on('connection', (socket) => {
    sockets.push(socket)
    if (socket.remotePort !== undefined) clientPorts.push(socket.remotePort)
    socket.on('error', (err) => errors.push(err))
    behaviour(socket, tracked)
  })
  server.listen(0, host)
  await once(server, 'listening')
  ;(tracked as { port: number }).port = (server.address() as net.AddressInfo).port
  return tracked
}

/** Writes a greeting naming the client's port, then closes (the peer closes first). */
export const greetAndClose: Behaviour = (socket) => {
  socket.end(`hello ${socket.remotePort}\n`)
}

/** Echoes every line; on "bye" answers "bye" and closes (a goodbye protocol, like pg Terminate). */
export const lineEcho: Behaviour = (socket) => {
  let buffer = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let i: number
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 1)
      if (line === 'bye') {
        socket.end('bye\n')
        return
      }
      socket.write(`${line}\n`)
    }
  })
  socket.on('end', () => socket.end())
}

/** Reads everything and closes only after the client's FIN (a peer that waits for us). */
export const closeAfterClientFin: Behaviour = (socket) => {
  socket.resume()
  socket.on('end', () => socket.end())
}

/** Never closes and never reads EOF-driven: holds the connection open. */
export const neverClose: Behaviour = (socket) => {
  socket.resume()
}

/**
 * A port with nothing listening, outside the kernel's ephemeral range: servers elsewhere on the
 * machine that listen on port 0 cannot take it, and no client socket can have it as its local
 * port (a loopback connect to an ephemeral port can even meet itself: TCP self-connect).
 */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
  const ceiling = Math.max(2000, (low ?? 32768) - 1)
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 1500 + Math.floor(Math.random() * (ceiling - 1500))
    const s = net.createServer()
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false))
      s.listen(port, host, () => resolve(true))
    })
    if (!ok) continue
    s.close()
    await once(s, 'close')
    return port
  }
  throw new Error('no free port outside the ephemeral range')
}
