// Interleaved A/B rounds: warm-up first, then every arm once
// per round, the order reversed every other round (A B, B A, ...) so that a drift of the machine
// during a round weighs on both sides alike; medians over rounds and per-round ratios.
import { ratios, summary } from './stats.mjs'

/**
 * @typedef {object} Arm
 * @property {string} name
 * @property {() => Promise<Record<string, any>>} run one measured batch; must return { perSecond, ... }
 * @property {() => Promise<void>} [warmup]
 */

/**
 * @param {{ arms: Arm[], rounds: number, onRound?: (round: number, arm: string, result: any) => void }} options
 * @returns {Promise<Record<string, any[]>>} each arm's results, one per round, in round order
 */
export async function interleave({ arms, rounds, onRound }) {
  for (const arm of arms) if (arm.warmup) await arm.warmup()
  const results = Object.fromEntries(arms.map((a) => [a.name, []]))
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? arms : [...arms].reverse()
    for (const arm of order) {
      const result = await arm.run()
      results[arm.name][r] = result
      onRound?.(r, arm.name, result)
    }
  }
  return results
}

/** Median and min–max over rounds of one field (a name, or a function of a result) of an arm's results. */
export function field(results, pick) {
  return summary(results.map((r) => (typeof pick === 'function' ? pick(r) : r?.[pick])))
}

/** Per-round ratios of a field between two arms (a / b). */
export function pairRatio(a, b, pick = 'perSecond') {
  const get = (r) => (typeof pick === 'function' ? pick(r) : r?.[pick])
  return ratios(a.map(get), b.map(get))
}

/**
 * A target: `value` (a ratio's median or a count) against `threshold` (`>=`, `>`, `<`, `==`).
 * @returns {{ name: string, value: number|null, op: string, threshold: number, goal?: number, met: boolean|null, note?: string }}
 */
export function target(name, value, op, threshold, extra = {}) {
  let met = null
  if (value !== null && value !== undefined && Number.isFinite(value)) {
    met = op === '>=' ? value >= threshold : op === '>' ? value > threshold : op === '<' ? value < threshold : op === '<=' ? value <= threshold : value === threshold
  }
  return { name, value: value ?? null, op, threshold, met, ...extra }
}
