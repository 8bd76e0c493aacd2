import { execFileSync } from 'node:child_process'
import diagnosticsChannel from 'node:diagnostics_channel'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { SocketRecycler } from '@fdrecycle/core'
import { fdOf, socketInode } from '../../../test/helpers/system.js'
import { ensureDebianPackages } from '../../../scripts/system-deps.mjs'

// Run-mode facts shared by the three adapters' suites.
export { expectRecycled, passthroughStats, recyclingSupported } from '../../../test/helpers/run-mode.js'

export interface Upstream extends AsyncDisposable {
  readonly server: http.Server | https.Server
  readonly port: number
  readonly url: string
  /** connections accepted so far */
  readonly accepted: number
  /** most connections open at once */
  readonly maxConcurrent: number
  /** the TLS servername (SNI) of each connection, in order; undefined where none was sent */
  readonly servernames: (string | undefined)[]
  /** TLS connections that resumed a session */
  readonly resumed: number
  /**
   * The client port of each connection: with it, timeWaitCount counts this upstream's connections
   * only (an earlier server may have had this port number, and its TIME_WAIT entries last 60 s).
   */
  readonly clientPorts: number[]
  close(): Promise<void>
}

/** A Node http(s) upstream on a free loopback port that counts its connections. */
export async function upstream(
  handler: http.RequestListener,
  tls?: { key: Buffer; cert: Buffer },
): Promise<Upstream> {
  const sockets = new Set<Duplex>()
  const servernames: (string | undefined)[] = []
  const clientPorts: number[] = []
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler)
  const state = { accepted: 0, maxConcurrent: 0, resumed: 0 }
  server.on(tls ? 'secureConnection' : 'connection', (socket: Duplex) => {
    state.accepted++
    if (tls) {
      const t = socket as TLSSocket
      servernames.push((t as unknown as { servername: string | false }).servername || undefined)
      if (t.isSessionReused()) state.resumed++
    }
    const remotePort = (socket as net.Socket).remotePort
    if (remotePort !== undefined) clientPorts.push(remotePort)
    sockets.add(socket)
    state.maxConcurrent = Math.max(state.maxConcurrent, sockets.size)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  const self: Upstream = {
    server,
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    get accepted() {
      return state.accepted
    },
    get maxConcurrent() {
      return state.maxConcurrent
    },
    get resumed() {
      return state.resumed
    },
    servernames,
    clientPorts,
    async close() {
      if (!server.listening) return
      server.close()
      server.closeAllConnections()
      await once(server, 'close')
    },
    async [Symbol.asyncDispose]() {
      await self.close()
    },
  }
  return self
}

export interface Fetched {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** One request through `agent`; resolves with the whole body, rejects on any error. */
export function fetch(url: string, agent: http.Agent, options: http.RequestOptions & { body?: Buffer | string } = {}): Promise<Fetched> {
  const { body, ...rest } = options
  const client = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = client.request(url, { agent, ...rest }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs `count` tasks, at most `concurrency` at a time. */
export async function runConcurrently(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await task(next++)
  }))
}

/** A bounded poll where no event exists (stats of the release protocol, `ss`). */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Every fd of `recycler` back in its pool and lendable: nothing in use, draining or cooling. */
export function settled(recycler: SocketRecycler, timeoutMs = 10_000): Promise<void> {
  return until(() => {
    const s = recycler.stats()
    return s.active === 0 && s.draining === 0 && s.cooling === 0
  }, 'the recycler to settle (active 0, draining 0, cooling 0)', timeoutMs)
}

export interface Connection {
  inode: string
  localPort: number | undefined
  reused: boolean
}

/**
 * Records each recycled connection as it connects (through the `fdrecycle:socket:acquired`
 * channel): the kernel socket behind it and whether the fd had served before.
 */
export function trackConnections(): { connections: Connection[]; stop(): void } {
  const connections: Connection[] = []
  const channel = diagnosticsChannel.channel('fdrecycle:socket:acquired')
  const onAcquired = (message: unknown) => {
    const { socket, reused } = message as { socket: net.Socket; reused: boolean }
    socket.once('connect', () => connections.push({ inode: socketInode(fdOf(socket)), localPort: socket.localPort, reused }))
  }
  channel.subscribe(onAcquired)
  return { connections, stop: () => channel.unsubscribe(onAcquired) }
}

/** Open fds of this process. */
export { fdCount, openSockets, socketsSince, timeWaitCount, timeWaitSnapshot } from '../../../test/helpers/system.js'

/** A self-signed certificate for localhost and 127.0.0.1, made with Debian's openssl. */
export function selfSignedCert(): { key: Buffer; cert: Buffer } {
  ensureDebianPackages(['openssl'])
  const dir = mkdtempSync(join(tmpdir(), 'fdrecycle-cert-'))
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'ignore' })
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A body of `size` bytes made of `byte`, written in `chunks` pieces without Content-Length (chunked). */
export function writeChunked(res: http.ServerResponse, size: number, byte: string, chunks: number): void {
  const piece = Math.ceil(size / chunks)
  let left = size
  const writeMore = (): void => {
    while (left > 0) {
      const n = Math.min(piece, left)
      left -= n
      if (!res.write(Buffer.alloc(n, byte))) {
        res.once('drain', writeMore)
        return
      }
    }
    res.end()
  }
  writeMore()
}
