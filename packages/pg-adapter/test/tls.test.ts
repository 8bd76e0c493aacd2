import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import tlsModule from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { RecycledSocket, SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
import {
  countClientTimeWaits, errorShape, expectRecycled, fdOf, openSockets, passthroughStats, recyclingSupported, released,
  saslTrace, servers, socketInode, socketsSince, tcpConfig, tcpSocketOf, tupleOf,
} from './helpers.js'

const { plain, tls, ca, scram } = servers()

let recycler: SocketRecycler
afterEach(async () => {
  await recycler?.close()
})

function streamOf(client: pg.Client): unknown {
  return (client as unknown as { connection: { stream: unknown } }).connection.stream
}

async function sslRow(client: pg.Client): Promise<{ ssl: boolean; version: string }> {
  const r = await client.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
  return r.rows[0]!
}

describe('ssl: TLS over the recycled socket', () => {
  it('verifies the server certificate (ssl: { ca }) and runs TLS on a recycled fd, then reuses the fd', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const inodes = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const client = new pg.Client({ ...tcpConfig(tls), ssl: { ca }, stream: pgStream(recycler) })
      await client.connect()
      expect(streamOf(client)).toBeInstanceOf(tlsModule.TLSSocket)
      const raw = tcpSocketOf(client)
      expect(raw).toBeInstanceOf(RecycledSocket)
      expect((raw as RecycledSocket).recycled).toBe(recyclingSupported)
      inodes.add(socketInode(fdOf(raw)))
      expect((streamOf(client) as tlsModule.TLSSocket).authorized).toBe(true)
      expect(await sslRow(client)).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) })
      await client.end()
      await released(recycler)
    }
    expect(inodes.size).toBe(recyclingSupported ? 1 : 3)
    expectRecycled(recycler.stats(), { connections: 3, reusedConnections: 2, recycled: 3, fdsClosed: 0 })
    await recycler.close()
    expect(socketsSince(baseline)).toBe(0)
  })

  it.runIf(tls.ipv6)('TLS to ::1', async () => {
    recycler = new SocketRecycler()
    // Verified as `localhost`: Node 22's checkServerIdentity rejects ::1 against the certificate's
    // IP SAN 0:0:0:0:0:0:0:1, which Node 20 and 24 accept (with or without the adapter).
    const client = new pg.Client({ ...tcpConfig(tls, '::1'), ssl: { ca, servername: 'localhost' }, stream: pgStream(recycler) })
    await client.connect()
    expect(tcpSocketOf(client).remoteFamily).toBe('IPv6')
    expect((await sslRow(client)).ssl).toBe(true)
    await client.end()
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1 })
  })

  it('TLS and plain tenants alternate on one fd, each with correct results', async () => {
    recycler = new SocketRecycler()
    const inodes = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const useTls = i % 2 === 0
      const client = new pg.Client({ ...tcpConfig(useTls ? tls : plain), ...(useTls ? { ssl: { ca } } : {}), stream: pgStream(recycler) })
      await client.connect()
      inodes.add(socketInode(fdOf(tcpSocketOf(client))))
      const r = await client.query<{ v: string }>('SELECT repeat($1, 10000) AS v', [String(i)])
      expect(r.rows[0]!.v).toBe(String(i).repeat(10000))
      expect((await sslRow(client)).ssl).toBe(useTls)
      await client.end()
      await released(recycler)
    }
    // A TLS tenant leaves its handle shut (UV_HANDLE_SHUT): the core moves the socket to a new
    // handle over a dup of the fd, so the kernel socket (inode) is the same throughout.
    expect(inodes.size).toBe(recyclingSupported ? 1 : 6)
    expectRecycled(recycler.stats(), { connections: 6, reusedConnections: 5, fdsCreated: 1 })
  })

  // enableChannelBinding is newer than pg 8.9 (the low end of the peer range), which offers plain SCRAM only.
  const channelBinding = (new pg.Client({ enableChannelBinding: true } as pg.ClientConfig) as { enableChannelBinding?: boolean }).enableChannelBinding === true
  it.runIf(channelBinding)('SCRAM-SHA-256-PLUS (channel binding to the TLS certificate) over a recycled socket', async () => {
    recycler = new SocketRecycler()
    const client = new pg.Client({
      ...tcpConfig(tls), user: scram.user, password: scram.password, ssl: { ca }, enableChannelBinding: true, stream: pgStream(recycler),
    })
    const sasl = saslTrace(client)
    await client.connect()
    expect(sasl).toEqual({ offered: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], chosen: 'SCRAM-SHA-256-PLUS', final: true })
    const r = await client.query<{ u: string }>('SELECT current_user AS u')
    expect(r.rows[0]!.u).toBe(scram.user)
    expect((await sslRow(client)).ssl).toBe(true)
    await client.end()
  })

  it('ssl against a server without TLS fails as with pg alone, and the fd goes back to the pool', async () => {
    recycler = new SocketRecycler()
    const attempt = async (withAdapter: boolean): Promise<unknown> => {
      const client = new pg.Client({ ...tcpConfig(plain), ssl: { ca }, ...(withAdapter ? { stream: pgStream(recycler) } : {}) })
      const err = await client.connect().then(() => null, (e: unknown) => e)
      // pg ends the socket on the server's 'N'; the fd is closed only once the server's FIN is in.
      // Waiting for it leaves no socket of this test open when the next one starts.
      const stream = streamOf(client) as Duplex
      if (!stream.closed) await once(stream, 'close')
      return err
    }
    const plainErr = await attempt(false)
    const recycledErr = await attempt(true)
    expect((plainErr as Error).message).toBe('The server does not support SSL connections')
    expect(errorShape(recycledErr)).toEqual(errorShape(plainErr))
    await released(recycler)
    expectRecycled(recycler.stats(), { connections: 1, recycled: 1, fdsClosed: 0, resetsSent: 0 })
  })

  it('a pg.Pool churning TLS connections reuses its fds (TIME_WAIT measured: Node sends the TLS FIN itself)', async () => {
    recycler = new SocketRecycler()
    const baseline = openSockets()
    const tuples = new Set<string>()
    const pool = new pg.Pool({ ...tcpConfig(tls), ssl: { ca }, stream: pgStream(recycler), max: 2, maxUses: 1 })
    pool.on('connect', (client) => tuples.add(tupleOf(client)))
    for (let i = 0; i < 40; i++) {
      const r = await pool.query<{ n: number; ssl: boolean }>('SELECT $1::int AS n, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', [i])
      expect(r.rows).toEqual([{ n: i, ssl: true }])
    }
    await pool.end()
    await released(recycler)
    const stats = recycler.stats()
    const timeWaits = countClientTimeWaits(tuples, [tls.port])
    console.log(`[pg tls churn] ${JSON.stringify({ connections: tuples.size, clientTimeWaits: timeWaits, stats })}`)
    expect(stats.connections).toBe(40)
    if (recyclingSupported) {
      expect(stats.fdsCreated).toBeLessThanOrEqual(4)
      expect(stats.reusedConnections).toBe(40 - stats.fdsCreated)
      expect(stats.fdsClosed).toBe(0)
    } else {
      expect(stats).toMatchObject(passthroughStats(40))
    }
    await recycler.close()
    expect(socketsSince(baseline)).toBe(0)
  })
})
