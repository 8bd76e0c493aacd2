/**
 * TLS sessions by servername, at most `max` of them, held weakly (undici's WeakSessionCache): a
 * session the TLS layer has dropped may be collected, and its entry then makes room first.
 */
export class SessionCache {
  readonly #max: number
  readonly #sessions = new Map<string, WeakRef<Buffer>>()

  constructor(max: number) {
    this.#max = max
  }

  get(key: string): Buffer | null {
    return this.#sessions.get(key)?.deref() ?? null
  }

  set(key: string, session: Buffer): void {
    if (this.#max === 0) return
    if (this.#sessions.has(key)) {
      this.#sessions.delete(key)
    } else if (this.#sessions.size >= this.#max) {
      let evicted = false
      for (const [k, ref] of this.#sessions) {
        if (ref.deref() === undefined) {
          this.#sessions.delete(k)
          evicted = true
          break
        }
      }
      if (!evicted) {
        const oldest = this.#sessions.keys().next()
        if (!oldest.done) this.#sessions.delete(oldest.value)
      }
    }
    this.#sessions.set(key, new WeakRef(session))
  }
}
