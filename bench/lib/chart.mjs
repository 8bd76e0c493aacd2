// A hand-written SVG bar chart (no dependency): one bar per result row with a ratio, the median
// of recycled / plain, a whisker for the min–max over rounds, a line at 1.0 (parity) and a tick
// at the row's target.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

export function chart(report) {
  const rows = report.scenarios
    .filter((s) => s.status === 'ok')
    .flatMap((s) => (s.rows ?? []).filter((r) => r.ratio && r.ratio.median !== null && r.chart !== false))
  const labelW = 330
  const plotW = 420
  const rowH = 28
  const top = 58
  const width = labelW + plotW + 90
  const barsHeight = top + Math.max(1, rows.length) * rowH + 46
  const seriesCharts = report.scenarios.filter((s) => s.status === 'ok' && s.chartSeries)
  const height = barsHeight + seriesCharts.length * SERIES_H
  const maxX = Math.max(1.5, ...rows.map((r) => r.ratio.max ?? r.ratio.median), ...rows.map((r) => r.target?.threshold ?? 0)) * 1.05
  const x = (v) => labelW + (Math.max(0, v) / maxX) * plotW
  const svg = []
  svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`)
  svg.push(`<rect width="100%" height="100%" fill="#ffffff"/>`)
  svg.push(`<text x="12" y="22" font-size="15" font-weight="bold">fdrecycle: recycled / plain (median, min–max over rounds)</text>`)
  svg.push(`<text x="12" y="40" fill="#555">${esc(`${report.date.slice(0, 10)} · ${report.machine.cpuModel}, ${report.machine.cores} cores · Linux ${report.machine.kernel} · Node ${report.machine.node}${report.quick ? ' · --quick' : ''}`)}</text>`)
  // grid and axis labels
  for (let v = 0; v <= maxX + 1e-9; v += 0.25) {
    const gx = x(v)
    const major = Math.abs(v - Math.round(v * 2) / 2) < 1e-9
    svg.push(`<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${top + rows.length * rowH}" stroke="${v === 1 ? '#333' : '#e3e3e3'}" stroke-width="${v === 1 ? 1.5 : 1}"/>`)
    if (major) svg.push(`<text x="${gx.toFixed(1)}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}x</text>`)
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH
    const met = r.target ? r.target.met : null
    const color = met === false ? '#d9822b' : met === true || r.ratio.median >= 1 ? '#2b8a3e' : '#c92a2a'
    svg.push(`<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${esc(r.scenario)}</text>`)
    svg.push(`<rect x="${x(0)}" y="${y + 6}" width="${(x(r.ratio.median) - x(0)).toFixed(1)}" height="${rowH - 12}" fill="${color}" opacity="0.85"/>`)
    if (r.ratio.min !== null && r.ratio.max !== null) {
      const cy = y + rowH / 2
      svg.push(`<line x1="${x(r.ratio.min).toFixed(1)}" y1="${cy}" x2="${x(r.ratio.max).toFixed(1)}" y2="${cy}" stroke="#111" stroke-width="1.2"/>`)
      for (const v of [r.ratio.min, r.ratio.max]) svg.push(`<line x1="${x(v).toFixed(1)}" y1="${cy - 5}" x2="${x(v).toFixed(1)}" y2="${cy + 5}" stroke="#111" stroke-width="1.2"/>`)
    }
    if (r.target && r.target.unit !== 'count' && Number.isFinite(r.target.threshold) && r.chartTarget !== false) {
      const tx = x(r.target.threshold)
      svg.push(`<path d="M ${tx.toFixed(1)} ${y + 3} l -4 -5 h 8 z" fill="#1c4e80"><title>target ${esc(r.target.op)} ${r.target.threshold}</title></path>`)
    }
    svg.push(`<text x="${x(Math.max(r.ratio.max ?? 0, r.ratio.median)) + 8}" y="${y + 17}" fill="#222">${r.ratio.median.toFixed(2)}x</text>`)
  })
  if (rows.length === 0) svg.push(`<text x="${labelW}" y="${top + 18}" fill="#555">no ratios in this run</text>`)
  const ly = barsHeight - 12
  svg.push(`<text x="12" y="${ly}" fill="#555">bar: median of per-round ratios · whisker: min–max · ▼ target · green: target met (or ≥ 1.0) · orange: target not met · red: &lt; 1.0</text>`)
  seriesCharts.forEach((s, i) => svg.push(...seriesPanels(s.chartSeries, barsHeight + i * SERIES_H, width)))
  svg.push('</svg>')
  return `${svg.join('\n')}\n`
}

/** Height of one time-series block (title, three panels, legend). */
const SERIES_H = 250
const PANELS = [
  { key: 'timeWait', title: 'client TIME_WAIT' },
  { key: 'portsInUse', title: 'local ports in use' },
  { key: 'fds', title: 'client open fds' },
]
const LINE = { plain: '#c92a2a', recycled: '#2b8a3e' }

/**
 * A scenario's time series ({ title, series: { plain: [{ t, timeWait, portsInUse, fds }], recycled } })
 * as three small line charts side by side, plain and recycled in each.
 */
function seriesPanels({ title, series }, y0, width) {
  const out = []
  out.push(`<text x="12" y="${y0 + 20}" font-size="14" font-weight="bold">${esc(title)}</text>`)
  const gap = 40
  const left = 12 + 44
  const panelW = (width - left - 12 - gap * (PANELS.length - 1)) / PANELS.length
  const top = y0 + 44
  const h = SERIES_H - 100
  const tMax = Math.max(1, ...['plain', 'recycled'].flatMap((m) => (series[m] ?? []).map((p) => p.t)))
  PANELS.forEach((panel, i) => {
    const x0 = left + i * (panelW + gap)
    const vMax = Math.max(1, ...['plain', 'recycled'].flatMap((m) => (series[m] ?? []).map((p) => p[panel.key] ?? 0)))
    const niceMax = niceCeil(vMax)
    const px = (t) => x0 + (t / tMax) * panelW
    const py = (v) => top + h - (v / niceMax) * h
    out.push(`<text x="${x0}" y="${top - 8}" fill="#222">${esc(panel.title)}</text>`)
    for (const f of [0, 0.5, 1]) {
      const gy = py(niceMax * f)
      out.push(`<line x1="${x0}" y1="${gy.toFixed(1)}" x2="${(x0 + panelW).toFixed(1)}" y2="${gy.toFixed(1)}" stroke="${f === 0 ? '#333' : '#e3e3e3'}"/>`)
      out.push(`<text x="${x0 - 4}" y="${(gy + 4).toFixed(1)}" text-anchor="end" fill="#555" font-size="10">${esc(shortNum(niceMax * f))}</text>`)
    }
    out.push(`<text x="${(x0 + panelW).toFixed(1)}" y="${top + h + 14}" text-anchor="end" fill="#555" font-size="10">${esc(`${Math.round(tMax)} s`)}</text>`)
    out.push(`<text x="${x0}" y="${top + h + 14}" fill="#555" font-size="10">0</text>`)
    for (const mode of ['plain', 'recycled']) {
      const pts = (series[mode] ?? []).filter((p) => Number.isFinite(p[panel.key]))
      if (pts.length === 0) continue
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'} ${px(p.t).toFixed(1)} ${py(p[panel.key]).toFixed(1)}`).join(' ')
      out.push(`<path d="${d}" fill="none" stroke="${LINE[mode]}" stroke-width="1.8"/>`)
    }
  })
  const ly = top + h + 36
  out.push(`<line x1="12" y1="${ly - 4}" x2="32" y2="${ly - 4}" stroke="${LINE.plain}" stroke-width="2"/><text x="38" y="${ly}" fill="#333">plain</text>`)
  out.push(`<line x1="92" y1="${ly - 4}" x2="112" y2="${ly - 4}" stroke="${LINE.recycled}" stroke-width="2"/><text x="118" y="${ly}" fill="#333">recycled</text>`)
  out.push(`<text x="200" y="${ly}" fill="#555">sampled every second; both modes at once, each towards its own destinations</text>`)
  return out
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function shortNum(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v % 1e6 === 0 ? 0 : 1)}M`
  if (v >= 1e3) return `${(v / 1e3).toFixed(v % 1e3 === 0 ? 0 : 1)}k`
  return String(Math.round(v))
}
