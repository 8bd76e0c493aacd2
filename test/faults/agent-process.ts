import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

interface Pending {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
  op: string
}

/** A bounded tail of a child's output, for the report when a test fails. */
export class OutputTail {
  readonly #lines: string[] = []
  #dropped = 0
  constructor(readonly limit = 4000) {}

  push(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > this.limit) {
      this.#lines.shift()
      this.#dropped++
    }
  }

  text(last = this.limit): string {
    const lines = this.#lines.slice(-last)
    const skipped = this.#dropped + this.#lines.length - lines.length
    return `${skipped > 0 ? `[${skipped} earlier lines left out]\n` : ''}${lines.join('\n')}`
  }
}

/**
 * A Node agent (client-agent.mjs or server-agent.mjs) run inside a network namespace with
 * `ip netns exec NS node SCRIPT`, driven by JSON-line RPC on its stdin/stdout. `ip netns exec`
 * execs the command, so the child's pid is node's own: killing it by pid kills the agent.
 */
export class AgentProcess {
  readonly name: string
  readonly stderr = new OutputTail()
  readonly #child: ChildProcess
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #exited = false
  #ready: Promise<Record<string, unknown>>

  private constructor(name: string, child: ChildProcess) {
    this.name = name
    this.#child = child
    let onReady!: (value: Record<string, unknown>) => void
    let onFail!: (error: Error) => void
    this.#ready = new Promise((resolve, reject) => {
      onReady = resolve
      onFail = reject
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: { id?: number; ok?: boolean; result?: unknown; error?: { message: string }; ready?: Record<string, unknown> }
      try {
        msg = JSON.parse(line)
      } catch {
        this.stderr.push(`[stdout] ${line}`)
        return
      }
      if (msg.ready) return onReady(msg.ready)
      const pending = msg.id !== undefined ? this.#pending.get(msg.id) : undefined
      if (!pending) return
      this.#pending.delete(msg.id!)
      clearTimeout(pending.timer)
      if (msg.ok) pending.resolve(msg.result)
      else pending.reject(new Error(`${this.name} ${pending.op}: ${msg.error?.message}`))
    })
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line))
    child.once('exit', (code, signal) => {
      this.#exited = true
      const error = new Error(`${this.name} exited (code ${code}, signal ${signal})\n${this.stderr.text(40)}`)
      onFail(error)
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer)
        p.reject(error)
      }
      this.#pending.clear()
    })
    child.once('error', (err) => onFail(err))
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  /** Starts `node script ...args` inside namespace `netns` and waits for its ready line. */
  static async start(name: string, netns: string, script: string, args: string[], env: Record<string, string> = {}): Promise<{ agent: AgentProcess; ready: Record<string, unknown> }> {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
    delete childEnv.NODE_OPTIONS // vitest's loaders are not for the agents
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv })
    const agent = new AgentProcess(name, child)
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    try {
      const ready = await agent.#ready
      return { agent, ready }
    } catch (err) {
      await agent.stop()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited`))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name} ${op}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, op })
      this.#child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`)
    })
  }

  /** Kills the agent by its pid (SIGKILL: nothing of it is worth a graceful end) and waits for it. */
  async stop(): Promise<void> {
    if (this.#exited || this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.kill('SIGKILL')
    await exited
  }
}
