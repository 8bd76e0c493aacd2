// Small statistics for interleaved A/B rounds: medians, min–max, per-round ratios.

/** The median of a list of numbers (the mean of the middle two for an even count); NaN if empty. */
export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** The q-quantile (0..1) by nearest rank. */
export function quantile(values, q) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]
}

/** { median, min, max, n } of the finite values. */
export function summary(values) {
  const v = values.filter((x) => Number.isFinite(x))
  return {
    median: round(median(v)),
    min: round(v.length ? Math.min(...v) : Number.NaN),
    max: round(v.length ? Math.max(...v) : Number.NaN),
    n: v.length,
  }
}

/** Per-round ratios a[i] / b[i] (rounds where both ran) and their summary. */
export function ratios(a, b) {
  const r = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i] > 0) r.push(a[i] / b[i])
  }
  return { ...summary(r), perRound: r.map((x) => round(x, 3)) }
}

/** Rounds to `digits` significant-ish decimals for the JSON (keeps files readable). */
export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return null
  const abs = Math.abs(x)
  const d = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : digits
  return Number(x.toFixed(d))
}

/** "1.14x (1.09–1.21)" */
export function fmtRatio(s) {
  if (!s || s.median === null || s.median === undefined) return 'n/a'
  return `${s.median.toFixed(2)}x (${s.min.toFixed(2)}–${s.max.toFixed(2)})`
}

/** A number with thousands separators, or n/a. */
export function fmtNum(x, decimals = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a'
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
}
