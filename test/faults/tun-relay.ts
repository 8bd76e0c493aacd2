import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { OutputTail } from './agent-process.js'

/** Faults the relay injects; "ab" is client (namespace A) to server (B), "ba" the way back. */
export interface RelayRules {
  delayAbMs?: number
  delayBaMs?: number
  /** Drop the first N TCP segments with FIN set in that direction. */
  dropFinAb?: number
  dropFinBa?: number
  /** Extra delay of pure ACKs of a flow once a FIN has passed the other way (a late last ACK). */
  delayAckAfterFinAbMs?: number
  delayAckAfterFinBaMs?: number
  /** Drop TCP segments with this probability (seeded). */
  lossAb?: number
  lossBa?: number
  seed?: number
  /** Log every forwarded TCP segment too (event "pass"), for timelines in failure reports. */
  trace?: boolean
}

export type RelayEventKind = 'drop-fin' | 'drop-loss' | 'delay-ack' | 'deliver-ack' | 'fin' | 'rst' | 'pass'

/** One logged segment: a fault injected, or a FIN/RST (with trace, any segment) forwarded. */
export interface RelayEvent {
  t: number
  kind: RelayEventKind
  dir: 'ab' | 'ba'
  flags: string
  src: string
  sport: number
  dst: string
  dport: number
  seq: number
  ack: number
  len: number
}

export type RelayStats = Record<string, number>

const SOURCE = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'tun-relay.c')
const EVENT = /^([\d.]+) (drop-fin|drop-loss|delay-ack|deliver-ack|fin|rst|pass) (ab|ba) (\S*) ([\d.]+):(\d+) ([\d.]+):(\d+) seq=(\d+) ack=(\d+) len=(\d+)$/

const BUILD_PREFIX = 'fdrecycle-tun-relay-'
let compiled: { dir: string; binary: string } | null = null

/** Compiles tun-relay.c with the machine's cc into a temp dir (named after this pid), once per process. */
export function compileRelay(): string {
  if (compiled) return compiled.binary
  sweepStaleBuilds()
  const dir = mkdtempSync(join(tmpdir(), `${BUILD_PREFIX}${process.pid}-`))
  const binary = join(dir, 'tun-relay')
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  compiled = { dir, binary }
  process.once('exit', removeRelayBuild)
  return binary
}

/** Removes the compiled relay (afterAll; running relays keep their inode). */
export function removeRelayBuild(): void {
  if (!compiled) return
  rmSync(compiled.dir, { recursive: true, force: true })
  compiled = null
}

/** Builds left by test processes that died before their afterAll (the dir names carry the pid). */
function sweepStaleBuilds(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = new RegExp(`^${BUILD_PREFIX}(\\d+)-`).exec(name)
    if (!m || Number(m[1]) === process.pid) continue
    try {
      process.kill(Number(m[1]), 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), name), { recursive: true, force: true })
    }
  }
}

/**
 * The packet relay between namespaces A and B (tun-relay.c), one process per lab. It creates a
 * TUN device named `dev` inside each namespace, so the devices vanish with the process.
 */
export class TunRelay {
  readonly events: RelayEvent[] = []
  readonly log = new OutputTail(20_000)
  readonly #child: ChildProcess
  readonly #waiters = new Set<() => void>()
  readonly #statsWaiters: ((stats: RelayStats) => void)[] = []
  #exited = false

  private constructor(child: ChildProcess) {
    this.#child = child
    createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(line))
    createInterface({ input: child.stderr! }).on('line', (line) => this.log.push(`[stderr] ${line}`))
    child.once('exit', () => {
      this.#exited = true
      for (const w of this.#waiters) w()
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  static async start(netnsA: string, netnsB: string, dev: string, rules: RelayRules): Promise<TunRelay> {
    const args = ['--netns-a', `/run/netns/${netnsA}`, '--netns-b', `/run/netns/${netnsB}`, '--dev', dev, '--max-seconds', '300']
    const flag = (name: string, value: number | undefined) => {
      if (value !== undefined) args.push(name, String(value))
    }
    flag('--delay-ab', rules.delayAbMs)
    flag('--delay-ba', rules.delayBaMs)
    flag('--drop-fin-ab', rules.dropFinAb)
    flag('--drop-fin-ba', rules.dropFinBa)
    flag('--delay-ack-after-fin-ab', rules.delayAckAfterFinAbMs)
    flag('--delay-ack-after-fin-ba', rules.delayAckAfterFinBaMs)
    flag('--loss-ab', rules.lossAb)
    flag('--loss-ba', rules.lossBa)
    flag('--seed', rules.seed)
    if (rules.trace) args.push('--trace', '1')
    const relay = new TunRelay(spawn(compileRelay(), args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    try {
      await relay.waitForLine((line) => / ready /.test(line), 10_000, 'the relay to start')
    } catch (err) {
      await relay.stop()
      throw err
    }
    return relay
  }

  #lines: string[] = []

  #onLine(line: string): void {
    this.log.push(line)
    this.#lines.push(line)
    const m = EVENT.exec(line)
    if (m) {
      this.events.push({
        t: Number(m[1]),
        kind: m[2] as RelayEventKind,
        dir: m[3] as 'ab' | 'ba',
        flags: m[4]!,
        src: m[5]!,
        sport: Number(m[6]),
        dst: m[7]!,
        dport: Number(m[8]),
        seq: Number(m[9]),
        ack: Number(m[10]),
        len: Number(m[11]),
      })
    } else if (/ stats /.test(line)) {
      const stats: RelayStats = {}
      for (const [, k, v] of line.matchAll(/(\w+)=(\d+)/g)) stats[k!] = Number(v)
      for (const w of this.#statsWaiters.splice(0)) w(stats)
    }
    for (const w of this.#waiters) w()
  }

  /** Events of one client port (the client's side of a connection), in log order. */
  eventsOf(clientPort: number, kind?: RelayEventKind): RelayEvent[] {
    return this.events.filter((e) => (e.dir === 'ab' ? e.sport : e.dport) === clientPort && (kind === undefined || e.kind === kind))
  }

  count(kind: RelayEventKind, dir?: 'ab' | 'ba'): number {
    return this.events.filter((e) => e.kind === kind && (dir === undefined || e.dir === dir)).length
  }

  /** Waits (event-driven: each log line wakes it) until `nth` events match, up to timeoutMs; returns the nth. */
  waitFor(predicate: (e: RelayEvent) => boolean, timeoutMs: number, what: string, nth = 1): Promise<RelayEvent> {
    return this.#wait(() => this.events.filter(predicate)[nth - 1], timeoutMs, what)
  }

  waitForLine(predicate: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return this.#wait(() => this.#lines.find(predicate), timeoutMs, what)
  }

  #wait<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = find()
        if (found !== undefined) {
          done()
          resolve(found)
        } else if (this.#exited) {
          done()
          reject(new Error(`relay exited while waiting for ${what}\n${this.log.text(20)}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** The relay's counters (SIGUSR1 makes it print a stats line). */
  stats(): Promise<RelayStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('relay stats: no answer')), 5000)
      this.#statsWaiters.push((s) => {
        clearTimeout(timer)
        resolve(s)
      })
      this.#child.kill('SIGUSR1')
    })
  }

  /**
   * Waits until the relay has logged every segment the devices held when this was called (its
   * stats line comes after them), so that counts of events are complete up to now.
   */
  async flush(): Promise<void> {
    await this.stats()
  }

  /** SIGTERM (it prints its final stats), SIGKILL if it lingers; by pid, waits for the exit. */
  async stop(): Promise<void> {
    if (this.#exited || this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000)
    await exited
    clearTimeout(timer)
  }
}
