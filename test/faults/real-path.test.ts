import { afterAll, beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest'
import { cleanupFaultLabs, ensureCoreBuilt, FaultLab, faultLabSupport, type LabOptions } from './fault-lab.js'
import { requireNamespaces } from '../helpers/namespaces.js'

// Issue #7: the release protocol on a real path (two namespaces joined by a TUN relay that delays
// and drops segments), not loopback. Each test checks from the relay's log that its fault happened.

const support = faultLabSupport()
requireNamespaces('faults on a real path: namespaces + TUN relay', support)

const TCP_CLOSE = 7
const TCP_LAST_ACK = 9

async function startLab(options: LabOptions): Promise<FaultLab> {
  const lab = await FaultLab.start(options)
  onTestFailed(async () => {
    console.error(await lab.diagnostics())
  })
  // FAULTS_VERBOSE=1 prints the relay log and the core's debug log of passing tests too.
  if (process.env.FAULTS_VERBOSE === '1') onTestFinished(async () => console.log(await lab.diagnostics()))
  return lab
}

describe.runIf(support.ok)('faults on a real path: namespaces + TUN relay', () => {
  beforeAll(ensureCoreBuilt)
  afterAll(cleanupFaultLabs)

  it('with 20 ms each way, connections are recycled, a peer that closes first sees no ECONNRESET, and no RST at all', async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20 } })
    await lab.init()
    const rstsBefore = await lab.clientOutRsts()
    const results = []
    for (let i = 0; i < 12; i++) {
      // the peer closes first; the client ends at once (FIN withheld) or after the EOF
      results.push(await lab.cycle({ behaviour: 'close', end: i % 2 === 0 ? 'end' : 'after-eof', size: 3000 + i, seed: i + 1 }))
    }
    expect(results.map((r) => r.error)).toEqual(results.map(() => null))
    expect(results.every((r) => r.ok)).toBe(true)
    // A parked fd waits in LAST_ACK for the peer's last ACK (40 ms behind our FIN) before it is lent
    // again, so the next connection, started at once, takes another fd: a few fds take turns.
    const fds = new Set(results.map((r) => r.inode)).size
    expect(fds).toBeGreaterThanOrEqual(2)
    expect(fds).toBeLessThanOrEqual(4)
    const stats = await lab.waitStats({ active: 0, draining: 0 })
    expect(stats).toMatchObject({ connections: 12, peerClosedFirst: 12, finSentFirst: 0, resetsSent: 0, drainTimeouts: 0 })
    expect(stats.fdsCreated).toBe(fds)
    expect(stats.reusedConnections).toBe(12 - fds)
    // the fault: every segment really took the delayed path (handshake, data, FINs)
    const relay = await lab.relay.stats()
    expect(relay.forwarded_ab).toBeGreaterThanOrEqual(12 * 4)
    // both FINs of every connection went through (a retransmission on a loaded machine may add one)
    const finPorts = (dir: 'ab' | 'ba') => new Set(lab.relay.events.filter((e) => e.kind === 'fin' && e.dir === dir).map((e) => (dir === 'ab' ? e.sport : e.dport)))
    expect(finPorts('ab')).toEqual(new Set(results.map((r) => r.localPort)))
    expect(finPorts('ba')).toEqual(new Set(results.map((r) => r.localPort)))
    expect(relay.min_hold_us_ab).toBeGreaterThanOrEqual(20_000)
    expect(relay.min_hold_us_ba).toBeGreaterThanOrEqual(20_000)
    // The peer closed first: it keeps the TIME_WAITs, the client none; no server socket saw a reset.
    const server = await lab.waitServerClosed()
    expect(server).toMatchObject({ closed: true, accepted: 12, errors: [] })
    expect((await lab.clientSockets()).TIME_WAIT ?? 0).toBe(0)
    // No fd is dissolved before its last ACK: our kernel sent no RST at all.
    await lab.relay.flush()
    expect(lab.relay.count('rst')).toBe(0)
    expect((await lab.clientOutRsts()) - rstsBefore).toBe(0)
  })

  it("with the peer's last ACK late, release draws no RST (the fd is parked) and the fd is reused at the next checkout", async () => {
    // RTT 100 ms: the ACK of our FIN comes 200 ms after it, well before the retransmission timeout
    // (RTT + rto_min, 1 s here), so our FIN is sent once and there is no second late ACK.
    await using lab = await startLab({ relay: { delayAbMs: 50, delayBaMs: 50, delayAckAfterFinBaMs: 100 }, clientRtoMinMs: 1000 })
    await lab.init()
    const rstsBefore = await lab.clientOutRsts()
    const first = await lab.cycle({ behaviour: 'close', end: 'after-eof', size: 5000, seed: 7 })
    expect(first).toMatchObject({ ok: true, error: null, sawEof: true })
    // released as parked: both FINs out, our socket in LAST_ACK until the late ACK comes
    expect(await lab.stats()).toMatchObject({ idle: 1, active: 0, draining: 0, recycled: 1, resetsSent: 0 })
    expect(await lab.client.call('tcpState', { fd: first.fd })).toBe(TCP_LAST_ACK)
    // the fault: the relay held the peer's last ACK and delivered it late
    const held = await lab.relay.waitFor((e) => e.kind === 'delay-ack' && e.dport === first.localPort, 5000, 'the delayed last ACK')
    await lab.relay.waitFor((e) => e.kind === 'deliver-ack' && e.dport === first.localPort && e.ack === held.ack, 5000, 'its delivery')
    // the parked socket took it: LAST_ACK -> CLOSE, and our kernel answered nothing
    expect(await lab.client.call('waitTcpState', { fd: first.fd, state: TCP_CLOSE })).toBe(TCP_CLOSE)
    expect((await lab.clientOutRsts()) - rstsBefore).toBe(0)
    await lab.relay.flush()
    expect(lab.relay.count('rst')).toBe(0)
    // the next checkout dissolves the parked fd (silently, from CLOSE) and reuses it
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 7000, seed: 8 })
    expect(second).toMatchObject({ ok: true, error: null, reused: true, inode: first.inode })
    await lab.waitStats({ active: 0, draining: 0 })
    await lab.relay.waitFor((e) => e.kind === 'deliver-ack' && e.dport === second.localPort, 5000, 'the second late ACK')
    expect(await lab.client.call('waitTcpState', { fd: second.fd, state: TCP_CLOSE })).toBe(TCP_CLOSE)
    expect((await lab.clientOutRsts()) - rstsBefore).toBe(0)
    await lab.relay.flush()
    for (const r of [first, second]) expect(lab.relay.eventsOf(r.localPort, 'fin').filter((e) => e.dir === 'ab')).toHaveLength(1)
    expect(await lab.stats()).toMatchObject({ fdsCreated: 1, reusedConnections: 1, resetsSent: 0 })
    expect(await lab.waitServerClosed()).toMatchObject({ closed: true, accepted: 2, errors: [] })
    expect((await lab.clientSockets()).TIME_WAIT ?? 0).toBe(0)
  })

  it('a checkout before the late last ACK leaves the LAST_ACK socket alone: another fd serves it, no RST, and the first fd is lent once its ACK is in', async () => {
    // The ACK of our FIN comes 440 ms after it. With the kernel's rto_min (200 ms) our FIN would be
    // sent again first, and the peer's second ACK, arriving after the first moved the socket to
    // CLOSE, would draw the kernel's RST whatever the client (a plain socket too): rto_min 1 s.
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, delayAckAfterFinBaMs: 400 }, clientRtoMinMs: 1000 })
    await lab.init()
    const rstsBefore = await lab.clientOutRsts()
    const first = await lab.cycle({ behaviour: 'close', end: 'after-eof', size: 2000, seed: 3 })
    expect(first.ok).toBe(true)
    expect(await lab.client.call('tcpState', { fd: first.fd })).toBe(TCP_LAST_ACK)
    // checked out before the late ACK: the parked fd is not ready, a new one serves the connection
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 2000, seed: 4 })
    expect(second).toMatchObject({ ok: true, error: null, reused: false })
    expect(second.inode).not.toBe(first.inode)
    // the late ACK reaches the still parked socket: LAST_ACK -> CLOSE, our kernel answers nothing
    await lab.relay.waitFor((e) => e.kind === 'deliver-ack' && e.dport === first.localPort, 5000, 'the late ACK of the first connection')
    expect(await lab.client.call('waitTcpState', { fd: first.fd, state: TCP_CLOSE })).toBe(TCP_CLOSE)
    await lab.relay.waitFor((e) => e.kind === 'deliver-ack' && e.dport === second.localPort, 5000, 'the late ACK of the second connection')
    // now the first fd is lent again (FIFO among those that waited)
    const third = await lab.cycle({ behaviour: 'close', end: 'end', size: 2000, seed: 5 })
    expect(third).toMatchObject({ ok: true, error: null, reused: true, inode: first.inode })
    await lab.relay.flush()
    // each FIN of ours went once: no retransmission, so no second late ACK
    for (const r of [first, second]) expect(lab.relay.eventsOf(r.localPort, 'fin').filter((e) => e.dir === 'ab')).toHaveLength(1)
    expect(lab.relay.count('rst')).toBe(0)
    expect((await lab.clientOutRsts()) - rstsBefore).toBe(0)
    expect(await lab.waitServerClosed()).toMatchObject({ closed: true, accepted: 3, errors: [] })
  })

  it('our FIN lost once: the retransmission reaches the peer and the drain finishes (no timeout, no RST)', async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinAb: 1 } })
    await lab.init({ finDelayMs: 100, drainTimeoutMs: 5000 })
    // the peer closes only after our FIN; the tenant leaves early, so the drain waits for it
    const first = await lab.cycle({ behaviour: 'wait', end: 'destroy', size: 1000, seed: 11 })
    expect(first).toMatchObject({ ok: true, error: null })
    const stats = await lab.waitStats({ active: 0, draining: 0 })
    expect(stats).toMatchObject({ drainTimeouts: 0, resetsSent: 0, finSentFirst: 1, recycled: 1, idle: 1, fdsClosed: 0 })
    // the fault: our first FIN was dropped, the kernel's retransmission (same seq) went through
    await lab.relay.flush()
    const dropped = lab.relay.eventsOf(first.localPort, 'drop-fin')
    expect(dropped).toHaveLength(1)
    const resent = lab.relay.eventsOf(first.localPort, 'fin').filter((e) => e.dir === 'ab')
    expect(resent.length).toBeGreaterThanOrEqual(1)
    expect(resent.every((e) => e.seq === dropped[0]!.seq && e.t > dropped[0]!.t)).toBe(true)
    expect(lab.relay.count('rst')).toBe(0)
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 12 })
    expect(second).toMatchObject({ ok: true, reused: true, inode: first.inode })
    expect(await lab.waitServerClosed()).toMatchObject({ closed: true, accepted: 2, errors: [] })
    // our FIN went first (finDelayMs elapsed), so this side keeps that connection's TIME_WAIT
    expect((await lab.clientSockets()).TIME_WAIT ?? 0).toBe(1)
  })

  it("our FIN lost and drainTimeoutMs shorter than the retransmission: 'close' closes the fd, the kernel still delivers the FIN", async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinAb: 2 } })
    await lab.init({ finDelayMs: 50, drainTimeoutMs: 150, onDrainTimeout: 'close' })
    const first = await lab.cycle({ behaviour: 'wait', end: 'destroy', size: 1000, seed: 21 })
    expect(first.ok).toBe(true)
    const stats = await lab.waitStats({ active: 0, draining: 0 })
    expect(stats).toMatchObject({ drainTimeouts: 1, fdsClosed: 1, resetsSent: 0, recycled: 0, idle: 0 })
    // close(2) left the FIN's retransmission to the kernel: the third FIN reaches the peer, which closes cleanly
    expect(await lab.waitServerClosed(10_000)).toMatchObject({ closed: true, accepted: 1, errors: [] })
    await lab.relay.flush()
    expect(lab.relay.eventsOf(first.localPort, 'drop-fin')).toHaveLength(2)
    expect(lab.relay.eventsOf(first.localPort, 'fin').filter((e) => e.dir === 'ab').length).toBeGreaterThanOrEqual(1)
    expect(lab.relay.eventsOf(first.localPort, 'rst')).toHaveLength(0)
    // that fd is gone: the next connection takes a new one
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 22 })
    expect(second).toMatchObject({ ok: true, reused: false })
    expect(second.inode).not.toBe(first.inode)
    expect(await lab.waitStats({ active: 0, draining: 0 })).toMatchObject({ fdsCreated: 2, fdsClosed: 1 })
  })

  it("our FIN lost and drainTimeoutMs shorter than the retransmission: 'reset' sends an RST (the waiting peer sees ECONNRESET) and reuses the fd", async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinAb: 2 } })
    await lab.init({ finDelayMs: 50, drainTimeoutMs: 150, onDrainTimeout: 'reset' })
    const rstsBefore = await lab.clientOutRsts()
    const first = await lab.cycle({ behaviour: 'wait', end: 'destroy', size: 1000, seed: 31 })
    expect(first.ok).toBe(true)
    const stats = await lab.waitStats({ active: 0, draining: 0 })
    expect(stats).toMatchObject({ drainTimeouts: 1, resetsSent: 1, fdsClosed: 0, recycled: 1, idle: 1 })
    const rst = await lab.relay.waitFor((e) => e.kind === 'rst' && e.dir === 'ab' && e.sport === first.localPort, 5000, 'the RST of the reset policy')
    expect(lab.relay.eventsOf(first.localPort, 'drop-fin').every((e) => e.t < rst.t)).toBe(true)
    expect(lab.relay.eventsOf(first.localPort, 'drop-fin').length).toBeGreaterThanOrEqual(1)
    // The policy's RST is the client's first on the wire. A segment of the peer's still on the
    // 20 ms path when the connection was dissolved can draw one more from the client's kernel (no
    // socket has that 4-tuple now), as it would after a plain socket's reset: later, so not counted
    // exactly (seen once in CI: 2).
    await lab.relay.flush()
    expect(lab.relay.eventsOf(first.localPort, 'rst').filter((e) => e.dir === 'ab')[0]).toEqual(rst)
    expect((await lab.clientOutRsts()) - rstsBefore).toBeGreaterThanOrEqual(1)
    // the peer never saw our FIN: it was still waiting for it, so the RST is a reset to it
    const server = await lab.waitServerClosed()
    expect(server.closed).toBe(true)
    expect(server.errors).toEqual([{ remotePort: first.localPort, error: 'ECONNRESET', behaviour: 'wait' }])
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 32 })
    expect(second).toMatchObject({ ok: true, error: null, reused: true, inode: first.inode })
    expect(await lab.waitStats({ active: 0, draining: 0 })).toMatchObject({ fdsCreated: 1, reusedConnections: 1 })
  })

  it("the peer's FIN lost once: its retransmission arrives within finDelayMs, the peer still closes first", async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinBa: 1 } })
    await lab.init({ finDelayMs: 2000 })
    const first = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 41 })
    expect(first).toMatchObject({ ok: true, error: null, sawEof: true })
    await lab.relay.flush()
    const dropped = lab.relay.eventsOf(first.localPort, 'drop-fin')
    expect(dropped).toMatchObject([{ dir: 'ba', len: 0 }])
    const resent = lab.relay.eventsOf(first.localPort, 'fin').filter((e) => e.dir === 'ba')
    expect(resent.length).toBeGreaterThanOrEqual(1)
    expect(resent.every((e) => e.seq === dropped[0]!.seq && e.t > dropped[0]!.t)).toBe(true)
    expect(await lab.waitStats({ active: 0, draining: 0 })).toMatchObject({ peerClosedFirst: 1, finSentFirst: 0, resetsSent: 0, idle: 1 })
    // once the peer's last ACK is in, the parked fd is lent again
    expect(await lab.client.call('waitTcpState', { fd: first.fd, state: TCP_CLOSE })).toBe(TCP_CLOSE)
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 42 })
    expect(second).toMatchObject({ ok: true, reused: true, inode: first.inode })
    expect(await lab.waitServerClosed()).toMatchObject({ closed: true, accepted: 2, errors: [] })
    expect((await lab.clientSockets()).TIME_WAIT ?? 0).toBe(0)
  })

  it("the peer's FIN lost and finDelayMs shorter than its retransmission: our FIN goes first, the connection ends at the peer's retransmitted FIN", async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinBa: 2 } })
    // the peer's FIN is lost twice: its first retransmission is lost too, ours goes long before the next
    await lab.init({ finDelayMs: 50, drainTimeoutMs: 5000 })
    const first = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 51 })
    expect(first).toMatchObject({ ok: true, error: null, sawEof: true })
    await lab.relay.flush()
    const dropped = lab.relay.eventsOf(first.localPort, 'drop-fin')
    expect(dropped).toMatchObject([{ dir: 'ba', len: 0 }, { dir: 'ba', len: 0 }])
    const ours = lab.relay.eventsOf(first.localPort, 'fin').find((e) => e.dir === 'ab')!
    const theirs = lab.relay.eventsOf(first.localPort, 'fin').find((e) => e.dir === 'ba')!
    expect(ours.t).toBeLessThan(theirs.t)
    expect(await lab.waitStats({ active: 0, draining: 0 })).toMatchObject({ peerClosedFirst: 0, finSentFirst: 1, drainTimeouts: 0, resetsSent: 0, idle: 1 })
    const second = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 52 })
    expect(second).toMatchObject({ ok: true, reused: true, inode: first.inode })
    expect(await lab.waitServerClosed()).toMatchObject({ closed: true, accepted: 2, errors: [] })
    // the documented cost of our FIN first: that connection's TIME_WAIT is on this side
    expect((await lab.clientSockets()).TIME_WAIT ?? 0).toBe(1)
  })

  // What broke (found by this suite, fixed in recycler.ts #validate): a parked fd was dissolved at
  // the next checkout while our FIN was unacknowledged (LAST_ACK after a lost FIN). tcp_disconnect()
  // from LAST_ACK is silent and ends the retransmissions: the FIN never reached the peer, which then
  // got an RST for its own retransmitted FIN, or waited in FIN_WAIT2 for ever. Now such an fd waits
  // until the kernel says CLOSE.
  it('our FIN lost after the peer closed first: the parked fd waits for the retransmission to be acknowledged; the peer closes cleanly', async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinAb: 2 } })
    await lab.init()
    const rstsBefore = await lab.clientOutRsts()
    const first = await lab.cycle({ behaviour: 'close', end: 'after-eof', size: 1000, seed: 61 })
    expect(first).toMatchObject({ ok: true, error: null })
    await lab.relay.flush()
    expect(lab.relay.eventsOf(first.localPort, 'drop-fin').length).toBeGreaterThanOrEqual(1)
    // parked with our FIN unacknowledged
    expect(await lab.client.call('tcpState', { fd: first.fd })).toBe(TCP_LAST_ACK)
    // a checkout now takes another fd and leaves this one retransmitting
    const second = await lab.cycle({ behaviour: 'close', end: 'after-eof', size: 1000, seed: 62 })
    expect(second).toMatchObject({ ok: true, error: null, reused: false })
    // our FIN gets through on a retransmission, the peer closes cleanly, our socket reaches CLOSE
    await lab.relay.waitFor((e) => e.kind === 'fin' && e.dir === 'ab' && e.sport === first.localPort, 10_000, 'our retransmitted FIN')
    expect(await lab.client.call('waitTcpState', { fd: first.fd, state: TCP_CLOSE, timeoutMs: 10_000 })).toBe(TCP_CLOSE)
    const server = await lab.waitServerClosed()
    expect(server).toMatchObject({ closed: true, accepted: 2, errors: [] })
    await lab.relay.flush()
    expect(lab.relay.count('rst')).toBe(0)
    expect((await lab.clientOutRsts()) - rstsBefore).toBe(0)
    // and then the fd is lent again
    const third = await lab.cycle({ behaviour: 'close', end: 'end', size: 1000, seed: 63 })
    expect(third).toMatchObject({ ok: true, error: null, reused: true })
    expect([first.inode, second.inode]).toContain(third.inode)
  })

  it("only our FIN lost (our ACK of the peer's FIN through): the peer's socket does not stay in FIN_WAIT2, it gets our retransmitted FIN", async () => {
    await using lab = await startLab({ relay: { delayAbMs: 20, delayBaMs: 20, dropFinAb: 2, trace: true } })
    await lab.init()
    // the application ends 100 ms after the EOF: the kernel's delayed ACK of the FIN goes first
    const first = await lab.cycle({ behaviour: 'close', end: 'after-eof', endDelayMs: 100, size: 1000, seed: 71 })
    expect(first).toMatchObject({ ok: true, error: null })
    await lab.relay.flush()
    const theirFin = lab.relay.eventsOf(first.localPort, 'fin').find((e) => e.dir === 'ba')!
    const ourFin = lab.relay.eventsOf(first.localPort, 'drop-fin')[0]!
    expect(ourFin).toBeDefined()
    // the fault as intended: a pure ACK of their FIN reached the peer before our (dropped) FIN
    const ackOfFin = lab.relay.eventsOf(first.localPort, 'pass').find((e) => e.dir === 'ab' && e.flags === '.' && e.ack === theirFin.seq + 1)
    expect(ackOfFin).toBeDefined()
    expect(ackOfFin!.t).toBeLessThan(ourFin.t)
    expect(await lab.client.call('tcpState', { fd: first.fd })).toBe(TCP_LAST_ACK)
    const second = await lab.cycle({ behaviour: 'close', end: 'after-eof', size: 1000, seed: 72 })
    expect(second).toMatchObject({ ok: true, error: null, reused: false })
    const server = await lab.waitServerClosed(10_000)
    await lab.relay.flush()
    expect(lab.relay.eventsOf(first.localPort, 'fin').filter((e) => e.dir === 'ab').length).toBeGreaterThanOrEqual(1)
    expect(server).toMatchObject({ closed: true, errors: [] })
  })
})
