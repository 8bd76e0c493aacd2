import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { describe, expect, it } from 'vitest'
import { SocketRecycler } from '@fdrecycle/core'
import { IPPROTO_TCP, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL } from '../../src/ffi/libc.js'
import { getIntOption } from '../../src/ffi/syscalls.js'
import { lineEcho, tcpServer } from '../../../../test/helpers/servers.js'
import { fdOf, isLinux } from '../../../../test/helpers/system.js'
import { exchange, settle } from '../helpers.js'

const keepalive = (socket: net.Socket): number[] =>
  [TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT].map((o) => getIntOption(fdOf(socket), IPPROTO_TCP, o))
const kernel = (name: string): number => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8'))

// What broke: a tenant that asked for `keepAlive: true` itself skipped the keepalive reset, but
// Node applies it with uv_tcp_keepalive(on, 0), which leaves TCP_KEEPIDLE/INTVL/CNT as they
// are: the last tenant's setKeepAlive(true, 3000) reached it (idle 3 s instead of 7200 s).
describe.runIf(isLinux)('regression: keepAlive without an initial delay after a tenant that set one', () => {
  it('the second tenant sees the kernel defaults, as a plain socket does', async () => {
    const recycler = new SocketRecycler()
    await using srv = await tcpServer(lineEcho)
    const first = recycler.createConnection({ host: '127.0.0.1', port: srv.port })
    let changed: number[] = []
    first.on('connect', () => {
      first.setKeepAlive(true, 3000)
      changed = keepalive(first)
    })
    await exchange(first, 'a\nbye\n', true)
    expect(changed[0]).toBe(3)
    await settle()

    const second = recycler.createConnection({ host: '127.0.0.1', port: srv.port, keepAlive: true })
    let seen: number[] = []
    second.on('connect', () => (seen = keepalive(second)))
    await exchange(second, 'b\nbye\n', true)
    expect(recycler.stats().reusedConnections).toBe(1)
    expect(seen).toEqual([kernel('tcp_keepalive_time'), kernel('tcp_keepalive_intvl'), kernel('tcp_keepalive_probes')])

    // and a tenant that asks for its own delay gets it
    await settle()
    const third = recycler.createConnection({ host: '127.0.0.1', port: srv.port, keepAlive: true, keepAliveInitialDelay: 9000 })
    let own: number[] = []
    third.on('connect', () => (own = keepalive(third)))
    await exchange(third, 'c\nbye\n', true)
    expect(recycler.stats().reusedConnections).toBe(2)
    expect(own[0]).toBe(9)
    await recycler.close()
  })
})
