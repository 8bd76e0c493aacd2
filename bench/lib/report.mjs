// The markdown report: one table a person reads at a glance, then targets, notes and details.
import { fmtNum, fmtRatio } from './stats.mjs'
import { machineLine } from './system.mjs'

const OPS = { '>=': '≥', '>': '>', '<': '<', '<=': '≤', '==': '=' }

/** A target's value or threshold in its unit: a count, a percentage or a ratio. */
export function fmtValue(t, x) {
  if (x === null || x === undefined) return 'not measured'
  if (t.unit === 'count') return fmtNum(x, t.decimals ?? 0)
  if (t.unit === '%') return `${x}%`
  return `${Number(x).toFixed(2)}x`
}

export function targetText(t) {
  if (!t) return ''
  const v = (x) => fmtValue(t, x)
  return `${OPS[t.op] ?? t.op} ${v(t.threshold)}${t.goal ? ` (goal ${v(t.goal)})` : ''}`
}

export function metText(t) {
  if (!t) return ''
  if (t.met === null) return 'n/a'
  return t.met ? 'yes' : '**no**'
}

function cell(r, side) {
  if (r[`${side}Text`] !== undefined) return r[`${side}Text`]
  const x = r[side]
  if (x === null || x === undefined) return 'n/a'
  return `${fmtNum(x, r.decimals ?? 0)} ${r.unit ?? ''}`.trim()
}

function twText(tw) {
  if (!tw) return ''
  const f = (x) => (x === null || x === undefined ? 'n/a' : fmtNum(x))
  return `${f(tw.plain)} / ${f(tw.recycled)} (N=${fmtNum(tw.n)})`
}

/** The rows of every scenario that ran, plus one line for each skipped or failed one. */
export function summaryTable(report) {
  const lines = [
    '| Scenario | Plain | Recycled | Recycled / plain: median (min–max per round) | Client TIME_WAIT plain / recycled | Target | Met |',
    '|---|---:|---:|---|---|---|---|',
  ]
  for (const s of report.scenarios) {
    if (s.status !== 'ok') {
      lines.push(`| ${s.title} | ${s.status}: ${String(s.reason ?? '').replace(/\|/g, '\\|').split('\n')[0].slice(0, 160)} | | | | | |`)
      continue
    }
    for (const r of s.rows ?? []) {
      const ratio = r.ratioText ?? (r.ratio ? fmtRatio(r.ratio) : '')
      const t = r.target
      lines.push(`| ${r.scenario} | ${cell(r, 'plain')} | ${cell(r, 'recycled')} | ${ratio}${r.extra ? `; ${r.extra}` : ''} | ${twText(r.timeWait)} | ${targetText(t)} | ${metText(t)} |`)
    }
  }
  return lines.join('\n')
}

export function markdown(report) {
  const m = report.machine
  const out = []
  out.push(`# fdrecycle benchmarks, ${report.date.slice(0, 16).replace('T', ' ')} UTC`)
  out.push('')
  out.push(`Machine: ${machineLine(m)}; at end ${m.loadAverageAtEnd?.join(' ') ?? '?'}.`)
  const src = report.source
  if (src?.commit) out.push(`Source: commit ${src.commit}${src.packagesModified?.length ? ` with uncommitted changes in ${src.packagesModified.join(', ')}` : ''}.`)
  out.push(`Run: ${report.quick ? '**--quick** (indicative only)' : 'full'}${report.only ? `, only ${report.only.join(', ')}` : ''}; ${report.rounds} interleaved A/B rounds after a warm-up; ${report.durationSeconds} s. ` +
    'Ratios are medians of per-round ratios (each round runs both sides back to back, order alternating), with the min–max over rounds.')
  if (m.loadAverageAtStart[0] > m.cores * 0.5) {
    out.push('')
    out.push(`> The load average at start (${m.loadAverageAtStart[0]}) shows other work on this ${m.cores}-core machine: absolute rates are noisy; the per-round ratios are the figures to read.`)
  }
  out.push('')
  out.push(summaryTable(report))
  out.push('')
  const targets = report.scenarios.flatMap((s) => (s.targets ?? []).map((t) => ({ ...t, scenario: s.name })))
  if (targets.length > 0) {
    out.push('## Targets')
    out.push('')
    for (const t of targets) {
      const value = fmtValue(t, t.value)
      out.push(`- ${t.met === true ? 'met' : t.met === false ? '**not met**' : 'n/a'}: ${t.scenario}: ${t.name}: ${value} (target ${targetText(t)})${t.note ? `. ${t.note}` : ''}`)
    }
    out.push('')
  }
  const notes = report.scenarios.filter((s) => s.notes?.length > 0)
  if (notes.length > 0) {
    out.push('## Notes')
    out.push('')
    for (const s of notes) for (const n of s.notes) out.push(`- ${s.name}: ${n}`)
    out.push('')
  }
  const details = report.scenarios.filter((s) => s.details?.length > 0)
  if (details.length > 0) {
    out.push('## Details')
    out.push('')
    for (const s of details) {
      out.push(`### ${s.title}`)
      out.push('')
      out.push(...s.details)
      out.push('')
    }
  }
  out.push(`Raw figures: \`bench/results/${report.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z')}.json\`. How to read them: \`bench/README.md\`.`)
  out.push('')
  return out.join('\n')
}
