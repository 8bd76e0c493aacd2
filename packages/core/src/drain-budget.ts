/**
 * How many fds may drain at once (maxDraining). A drain holds an fd for a peer that may never
 * close (finDelayMs, then drainTimeoutMs); a plain socket's destroy() would have closed it at
 * once. Without a cap a client that destroys sockets faster than their peers close meets EMFILE
 * where a plain one would not: past the cap the oldest drain is closed as plain net would.
 */

/** 'auto' takes this share of the soft RLIMIT_NOFILE; the rest stays the user's. */
export const AUTO_SHARE = 1 / 4
/** ... and never fewer than this (a tiny limit still lets a few peers close first). */
export const AUTO_MIN = 16
/** When RLIMIT_NOFILE cannot be read (a quarter of the common 1024). */
export const AUTO_FALLBACK = 256

/** maxDraining resolved: the option as given, or for 'auto' a share of the soft fd limit. */
export function resolveMaxDraining(option: number | 'auto', readSoftLimit: () => number): number {
  if (option !== 'auto') return option
  let limit: number
  try {
    limit = readSoftLimit()
  } catch {
    return AUTO_FALLBACK
  }
  return Math.max(AUTO_MIN, Math.floor(limit * AUTO_SHARE))
}

/**
 * The drains to close so that at most `max` remain, oldest first (`draining` in start order, as a
 * Map keeps insertion order).
 */
export function drainsOverBudget<K>(draining: ReadonlyMap<K, unknown>, max: number): K[] {
  const over = draining.size - max
  if (over <= 0) return []
  const out: K[] = []
  for (const key of draining.keys()) {
    out.push(key)
    if (out.length === over) break
  }
  return out
}
