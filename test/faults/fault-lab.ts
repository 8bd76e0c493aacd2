import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ensureBuilt } from '../helpers/built.js'
import { AgentProcess } from './agent-process.js'
import { compileRelay, removeRelayBuild, TunRelay, type RelayRules } from './tun-relay.js'

const here = import.meta.dirname ?? new URL('.', import.meta.url).pathname

/** Addresses live only inside the lab's namespaces. */
export const CLIENT_ADDRESS = '10.213.1.1'
export const SERVER_ADDRESS = '10.213.1.2'
const SUBNET = '10.213.1.0'
const DEV = 'fdrt0'
const PREFIX = 'fdrflt'

/** Recycler stats as the client agent reports them (RecyclerStats of the built core). */
export type ClientStats = Record<string, number | string>

export interface CycleResult {
  ok: boolean
  error: string | null
  received: number
  sawEof: boolean
  fd: number
  inode: string | null
  localPort: number
  pooledId: number
  reused: boolean
  ms: number
}

/** One server-side connection as server-agent.mjs tracks it. */
export interface ServerConnection {
  remotePort: number
  behaviour: string | null
  /** the client's FIN arrived */
  gotEnd: boolean
  error: string | null
  closed: boolean
  hadError: boolean
}

export interface ServerState {
  accepted: number
  open: number
  errors: { remotePort: number; error: string; behaviour: string | null }[]
  openConns: ServerConnection[]
  /** waitServerClosed(): whether every connection closed within the wait */
  closed?: boolean
  /** waitServerClosed() when some stayed open: namespace B's TCP sockets by state */
  sockets?: { counts: Record<string, number>; list: { state: string; localPort: number; remotePort: number }[] }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/**
 * Whether this process may build labs: Linux, /dev/net/tun, `ip netns add` permitted (root or
 * CAP_SYS_ADMIN), a C compiler. Probed once, synchronously, for `describe.runIf`.
 */
export function faultLabSupport(): { ok: boolean; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' }
  if (!existsSync('/dev/net/tun')) return { ok: false, reason: '/dev/net/tun is missing' }
  const probe = `${PREFIX}-${process.pid}-probe`
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (add.error) return { ok: false, reason: `ip(8) unavailable: ${add.error.message}` }
  if (add.status !== 0) return { ok: false, reason: `'ip netns add' not permitted (needs root or CAP_SYS_ADMIN): ${add.stderr.trim()}` }
  spawnSync('ip', ['netns', 'del', probe])
  const cc = spawnSync('cc', ['--version'])
  if (cc.error || cc.status !== 0) return { ok: false, reason: 'no C compiler (cc) for the TUN relay' }
  return { ok: true, reason: '' }
}

/** The agents import the built package (packages/core/dist, as users do). */
export async function ensureCoreBuilt(): Promise<void> {
  ensureBuilt('core')
}

const live = new Set<FaultLab>()
let labCounter = 0

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Namespaces left by a run whose process died without cleaning up (names carry the pid). */
function sweepStaleNamespaces(): void {
  let names: string[] = []
  try {
    names = readdirSync('/run/netns')
  } catch {
    return
  }
  for (const name of names) {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name)
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) spawnSync('ip', ['netns', 'del', name])
  }
}

/** afterAll of a test file: every lab is disposed by then; the relay's build goes too. */
export async function cleanupFaultLabs(): Promise<void> {
  await Promise.allSettled([...live].map((lab) => lab[Symbol.asyncDispose]()))
  removeRelayBuild()
}

// A worker that exits mid-test still removes what it made; one killed outright leaves namespaces
// and builds named after its pid, which the next run sweeps (sweepStaleNamespaces, compileRelay).
process.once('exit', () => {
  for (const lab of live) lab.disposeSync()
})

export interface LabOptions {
  relay?: RelayRules
  /** NODE_DEBUG=fdrecycle in the client agent (its stderr is kept for failure reports). */
  debug?: boolean
  /**
   * The client's least retransmission timeout (the route's rto_min; the kernel's default is 200 ms,
   * so an ACK held longer than about RTT + 200 ms draws a retransmitted FIN, whose second ACK
   * reaches a closed flow and draws the kernel's RST, recycled or not).
   */
  clientRtoMinMs?: number
}

/**
 * Two network namespaces joined by tun-relay (client in A at 10.213.1.1, server in B at
 * 10.213.1.2), a server agent in B and a client agent in A that runs the built @fdrecycle/core.
 * `await using lab = await FaultLab.start({ relay: { delayAbMs: 20 } })`: everything (agents,
 * relay, namespaces) is removed on dispose, also when the test fails.
 */
export class FaultLab implements AsyncDisposable {
  readonly netnsA: string
  readonly netnsB: string
  relay!: TunRelay
  client!: AgentProcess
  server!: AgentProcess
  serverPort = 0
  #disposed = false
  /** The server's state taken at dispose, for diagnostics() after the test (when the agent is gone). */
  #finalServerState: ServerState | string | null = null

  private constructor() {
    const id = `${PREFIX}-${process.pid}-${++labCounter}`
    this.netnsA = `${id}-a`
    this.netnsB = `${id}-b`
  }

  static async start(options: LabOptions = {}): Promise<FaultLab> {
    compileRelay()
    sweepStaleNamespaces()
    const lab = new FaultLab()
    live.add(lab)
    try {
      for (const ns of [lab.netnsA, lab.netnsB]) {
        ip('netns', 'add', ns)
        ip('-n', ns, 'link', 'set', 'lo', 'up')
      }
      lab.relay = await TunRelay.start(lab.netnsA, lab.netnsB, DEV, options.relay ?? {})
      ip('-n', lab.netnsA, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', DEV)
      ip('-n', lab.netnsA, 'link', 'set', DEV, 'up')
      if (options.clientRtoMinMs !== undefined) {
        ip('-n', lab.netnsA, 'route', 'replace', `${SUBNET}/24`, 'dev', DEV, 'proto', 'kernel', 'scope', 'link', 'src', CLIENT_ADDRESS, 'rto_min', `${options.clientRtoMinMs}ms`)
      }
      ip('-n', lab.netnsB, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', DEV)
      ip('-n', lab.netnsB, 'link', 'set', DEV, 'up')
      const server = await AgentProcess.start('server', lab.netnsB, join(here, 'server-agent.mjs'), [SERVER_ADDRESS])
      lab.server = server.agent
      lab.serverPort = server.ready.port as number
      const client = await AgentProcess.start('client', lab.netnsA, join(here, 'client-agent.mjs'), [], options.debug === false ? {} : { NODE_DEBUG: 'fdrecycle' })
      lab.client = client.agent
      return lab
    } catch (err) {
      await lab[Symbol.asyncDispose]()
      throw err
    }
  }

  // ---- the client (namespace A) -------------------------------------------------------------

  async init(options: Record<string, unknown> = {}): Promise<void> {
    const { mode } = await this.client.call<{ mode: string }>('init', { options })
    if (mode !== 'recycling') throw new Error(`the client agent's recycler is in mode ${mode}: the core cannot recycle here`)
  }

  /** One connection from the client agent (client-agent.mjs `cycle` says what each option does). */
  cycle(args: { behaviour: 'close' | 'wait'; end: 'after-eof' | 'end' | 'destroy' | 'reset'; endDelayMs?: number; size?: number; seed?: number }): Promise<CycleResult> {
    return this.client.call<CycleResult>('cycle', { host: SERVER_ADDRESS, port: this.serverPort, size: 1000, seed: 42, ...args })
  }

  stats(): Promise<ClientStats> {
    return this.client.call<ClientStats>('stats')
  }

  /**
   * Waits until the client recycler's stats match `until`, and no released fd is cooling: a fd is
   * lent again one poll phase after its release, and a cycle that reaches the client's loop before
   * then (as on a loaded machine) gets a new fd, not the one a test expects to be reused.
   */
  async waitStats(until: Record<string, number>, timeoutMs = 10_000): Promise<ClientStats> {
    const wanted = { cooling: 0, ...until }
    const r = await this.client.call<{ matched: boolean; stats: ClientStats }>('waitStats', { until: wanted, timeoutMs }, timeoutMs + 5000)
    if (!r.matched) throw new Error(`client stats never matched ${JSON.stringify(wanted)}: ${JSON.stringify(r.stats)}`)
    return r.stats
  }

  /** `Tcp: OutRsts` of namespace A: every RST the client's kernel sent (nstat's TcpOutRsts). */
  async clientOutRsts(): Promise<number> {
    const tcp = await this.client.call<Record<string, number>>('snmp')
    if (typeof tcp.OutRsts !== 'number') throw new Error(`no Tcp OutRsts in /proc/net/snmp: ${JSON.stringify(tcp)}`)
    return tcp.OutRsts
  }

  /** A kernel counter of namespace A as nstat(8) reads it (`nstat -asz`: absolute, no history file). */
  nstatClient(counter: string): number {
    const out = execFileSync('ip', ['netns', 'exec', this.netnsA, 'nstat', '-asz', counter], { encoding: 'utf8' })
    const m = new RegExp(`^${counter}\\s+(\\d+)`, 'm').exec(out)
    if (!m) throw new Error(`nstat gave no ${counter}: ${out}`)
    return Number(m[1])
  }

  /** TCP sockets of namespace A by state (TIME_WAIT included). */
  async clientSockets(): Promise<Record<string, number>> {
    return (await this.client.call<{ counts: Record<string, number> }>('sockets')).counts
  }

  // ---- the server (namespace B) -------------------------------------------------------------

  serverState(): Promise<ServerState> {
    return this.server.call<ServerState>('state')
  }

  /** Resolves once every server-side connection has closed (or after timeoutMs, closed: false). */
  waitServerClosed(timeoutMs = 5000): Promise<ServerState> {
    return this.server.call<ServerState>('waitClosed', { timeoutMs }, timeoutMs + 5000)
  }

  /**
   * One connection, by the client's local port, as one timeline: the relay's segments of that flow
   * (with `trace`, all of them) and the client fd's transitions up to its next checkout.
   */
  async timeline(clientPort: number): Promise<string> {
    const connection = await this.client
      .call<{ pooledId: number; error: string | null; transitions: { from: string; to: string; reason: string; t: number }[] } | null>('connection', { localPort: clientPort })
      .catch(() => null)
    const rows: { t: number; text: string }[] = this.relay.eventsOf(clientPort).map((e) => ({
      t: e.t,
      text: `relay  ${e.kind.padEnd(11)} ${e.dir === 'ab' ? 'client -> server' : 'server -> client'} [${e.flags}] seq=${e.seq} ack=${e.ack} len=${e.len}`,
    }))
    for (const x of connection?.transitions ?? []) rows.push({ t: x.t, text: `client fd#${connection!.pooledId} ${x.from} -> ${x.to}: ${x.reason}` })
    rows.sort((a, b) => a.t - b.t)
    const t0 = rows[0]?.t ?? 0
    const head = `connection from client port ${clientPort}${connection?.error ? ` (client error ${connection.error})` : ''}`
    return [head, ...rows.map((r) => `  +${(r.t - t0).toFixed(1).padStart(8)} ms  ${r.text}`)].join('\n')
  }

  /** Everything worth reading when a test fails: the relay log, the core's debug log, the server. */
  async diagnostics(): Promise<string> {
    const server = this.#finalServerState ?? (await this.serverState().catch((e: Error) => e.message))
    return [
      `--- relay log (${this.netnsA} <-> ${this.netnsB}) ---`,
      this.relay?.log.text(200) ?? '(no relay)',
      '--- client stderr (NODE_DEBUG=fdrecycle) ---',
      this.client?.stderr.text(300) ?? '(no client)',
      '--- server state ---',
      JSON.stringify(server),
    ].join('\n')
  }

  // ---- teardown -------------------------------------------------------------------------------

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    if (this.server) this.#finalServerState = await this.server.call<ServerState>('state', {}, 2000).catch((e: Error) => e.message)
    await Promise.allSettled([this.client?.stop(), this.server?.stop(), this.relay?.stop()])
    for (const ns of [this.netnsA, this.netnsB]) spawnSync('ip', ['netns', 'del', ns])
    live.delete(this)
  }

  /** For process exit: kill by pid, delete the namespaces, synchronously. */
  disposeSync(): void {
    if (this.#disposed) return
    this.#disposed = true
    for (const pid of [this.client?.pid, this.server?.pid, this.relay?.pid]) {
      if (pid === undefined) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    for (const ns of [this.netnsA, this.netnsB]) spawnSync('ip', ['netns', 'del', ns])
  }
}
