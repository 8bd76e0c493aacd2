// What the kernel says about the demo's client sockets, read with `ss` (iproute2). Only sockets
// towards the demo's own backends count: on loopback both ends of every connection are in the same
// table, and other programs have sockets too, so each line is matched by its peer address:port.
import { execFile } from 'node:child_process'

/**
 * Runs `ss -Htan [state S] ( dst PREFIX )` and groups the client sockets by side: `sides` maps
 * "host:port" of a backend to "plain/line", "recycled/http"... Resolves with { plain, recycled }
 * counts of distinct local ports and `byKind`, sockets per "side/protocol"; null when `ss` is
 * missing or fails.
 * @param {string} prefix e.g. "127.91.7.0/24"
 * @param {Map<string, string>} sides
 * @param {{ state?: string }} [options]
 */
export function clientSockets(prefix, sides, { state } = {}) {
  const args = ['-Htan', ...(state ? ['state', state] : []), `( dst ${prefix} )`]
  return new Promise((resolve) => {
    execFile('ss', args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 }, (err, stdout) => {
      if (err) return resolve(null)
      const ports = { plain: new Set(), recycled: new Set() }
      const byKind = {}
      for (const line of stdout.split('\n')) {
        const f = line.trim().split(/\s+/)
        if (f.length < 4) continue
        const key = sides.get(f[f.length - 1]) // peer: the backend
        if (!key) continue
        const local = f[f.length - 2]
        ports[key.split('/')[0]].add(local.slice(local.lastIndexOf(':') + 1))
        byKind[key] = (byKind[key] ?? 0) + 1
      }
      resolve({ plain: ports.plain.size, recycled: ports.recycled.size, byKind })
    })
  })
}

/**
 * Samples `clientSockets` (any state: connecting, open, closing, TIME_WAIT) every `everyMs` until
 * stopped; a sample is skipped while the previous one is still running.
 */
export function portSampler(prefix, sides, everyMs) {
  const samples = []
  const t0 = Date.now()
  let current = null
  const take = () => {
    if (current) return current
    const at = (Date.now() - t0) / 1000
    current = clientSockets(prefix, sides).then((s) => {
      if (s) samples.push({ t: Math.round(at * 10) / 10, plain: s.plain, recycled: s.recycled })
      current = null
    })
    return current
  }
  void take()
  const timer = setInterval(take, everyMs)
  return {
    samples,
    async stop() {
      clearInterval(timer)
      await current
      await take()
      return samples
    },
  }
}
