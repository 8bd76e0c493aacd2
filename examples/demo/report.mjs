// The demo's report: only figures measured in this run, in plain words.

export const median = (values) => {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return null
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const fmt = (x, digits = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : x === null || x === undefined ? 'n/a' : String(x))
const row = (label, plain, recycled, digits = 0) => console.log(`  ${label.padEnd(46)} ${fmt(plain, digits).padStart(10)} ${fmt(recycled, digits).padStart(10)}`)
const SPARKS = '▁▂▃▄▅▆▇█'

/** One line per side, both on the same scale. */
function sparklines(samples, width = 48) {
  const max = Math.max(1, ...samples.flatMap((s) => [s.plain, s.recycled]))
  const pick = samples.length <= width ? samples : Array.from({ length: width }, (_, i) => samples[Math.floor((i * samples.length) / width)])
  const line = (mode) => pick.map((s) => SPARKS[Math.min(SPARKS.length - 1, Math.floor((s[mode] / max) * SPARKS.length))]).join('')
  return { max, plain: line('plain'), recycled: line('recycled') }
}

export function printReport(r) {
  const p = r.sides.plain
  const q = r.sides.recycled
  const rounds = r.rounds.length / 2
  console.log('')
  row('measured in the rounds', 'plain', 'recycled')
  row('connections made', p.connections, q.connections)
  row('connections that failed', p.failed, q.failed)
  row('new sockets created (socket(2) calls)', p.socketsCreated, q.socketsCreated)
  row('distinct sockets used', p.distinctSockets, q.distinctSockets)
  row('connections on a reused socket', p.reusedConnections, q.reusedConnections)
  row('client TIME_WAIT left behind (ss)', p.timeWait, q.timeWait)
  row('local ports in use, peak (ss samples)', p.portsPeak, q.portsPeak)
  row('client CPU per connection, µs', p.cpuUsPerConnection, q.cpuUsPerConnection, 1)
  row('  of which in the kernel, µs', p.cpuSystemUsPerConnection, q.cpuSystemUsPerConnection, 1)
  row("  of which on V8's helper threads, µs", p.helperCpuUsPerConnection, q.helperCpuUsPerConnection, 1)
  row(`connections per second (median of ${rounds} rounds)`, Math.round(p.perSecond), Math.round(q.perSecond))

  if (r.portsOverTime.length > 1) {
    const s = sparklines(r.portsOverTime)
    const last = r.portsOverTime[r.portsOverTime.length - 1]
    console.log(`\n  local ports in use over the run (${r.portsOverTime.length} samples over ${fmt(last.t, 1)} s, full height = ${fmt(s.max)}):`)
    console.log(`    plain     ${s.plain}`)
    console.log(`    recycled  ${s.recycled}`)
  }

  console.log('\n  What this run shows:')
  const say = (text) => console.log(`  - ${text}`)
  say((p.socketsCreated === p.connections ? `Plain sockets created a new kernel socket for each of their ${fmt(p.connections)} connections. ` : `Plain sockets created ${fmt(p.socketsCreated)} kernel sockets for ${fmt(p.connections)} connections. `) +
    (r.recycling.supported
      ? `Recycled sockets created ${fmt(q.socketsCreated)} new ones in the rounds (the pool kept those of the warm-up), used ${fmt(q.distinctSockets)} sockets in all, and served ${fmt(q.reusedConnections)} connections on a socket used before: connect(AF_UNSPEC) ends a connection and keeps the socket.`
      : `Recycling is not available here (${r.recycling.reason}), so the recycled side used plain sockets too.`))
  if (p.timeWait !== null && q.timeWait !== null) {
    const half = (side) => `${fmt(side.timeWaitByProtocol.line)} line-protocol, ${fmt(side.timeWaitByProtocol.http)} HTTP`
    say(`After the rounds, ${fmt(p.timeWait)} plain connections were in TIME_WAIT on the client side (${half(p)}), against ${fmt(q.timeWait)} recycled ones (${half(q)}). ` +
      'TIME_WAIT lasts 60 s and holds a local port; it stays with whichever side sent the first FIN. The plain line-protocol client ends the connection as it sends its goodbye, so it can close first.' +
      (q.recycler ? ` The recycled client waits for the backend's FIN: in ${fmt(q.recycler.peerClosedFirst)} of ${fmt(q.connections)} recycled connections the backend closed first and holds the TIME_WAIT.` : ''))
  } else {
    say('TIME_WAIT and local ports could not be counted: `ss` (iproute2) is not installed.')
  }
  const ratio = r.ratio
  const cpuDelta = (q.cpuUsPerConnection - p.cpuUsPerConnection) / p.cpuUsPerConnection
  const straddles = ratio.min < 1 && ratio.max > 1
  const speed = `recycled / plain = ${ratio.median.toFixed(2)}x in connections per second (median of ${rounds} rounds; rounds ranged ${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`
  if (Math.abs(ratio.median - 1) < 0.005) {
    say(`Recycled was about as fast as plain in this run: ${speed}.`)
  } else if (ratio.median > 1) {
    say(`Recycled was ${Math.round((ratio.median - 1) * 100)}% faster in this run: ${speed}${straddles ? '; some rounds went the other way, so the difference is within this run\'s noise' : ''}.`)
  } else {
    say(`Recycled was ${Math.round((1 - ratio.median) * 100)}% slower in this run: ${speed}${straddles ? '; some rounds went the other way, so the difference is within this run\'s noise' : ''}.`)
  }
  say(`The client used ${fmt(q.cpuUsPerConnection, 1)} µs of CPU per recycled connection against ${fmt(p.cpuUsPerConnection, 1)} µs per plain one (${cpuDelta >= 0 ? '+' : ''}${Math.round(cpuDelta * 100)}%; kernel part ${fmt(q.cpuSystemUsPerConnection, 1)} vs ${fmt(p.cpuSystemUsPerConnection, 1)} µs).` +
    (ratio.median < 1 && cpuDelta > 0
      ? ` User (JavaScript) time per connection was ${fmt(q.cpuUserUsPerConnection, 1)} vs ${fmt(p.cpuUserUsPerConnection, 1)} µs. ` +
        `${q.cpuSystemUsPerConnection < p.cpuSystemUsPerConnection ? 'The kernel time it saved did not make up for that' : 'It saved no kernel time in this run'}. ` +
        'This run does not show where the time goes: `node bench/demo-profile.mjs` splits it per protocol (--workload line or http) and per function (bench/README.md).'
      : ''))
  if (r.warmup) {
    const w = r.warmup
    const limited = ['plain', 'recycled'].filter((m) => !w[m].warm)
    say(`Before the rounds, each side warmed up on backends of its own (${fmt(w.plain.connections)} plain and ${fmt(w.recycled.connections)} recycled connections), as a service that has run for a while is warm: ` +
      `until V8's helper threads, which compile the client's code, took under ${Math.round(w.limits.helperShare * 100)}% of its CPU` +
      (limited.length > 0 ? `. The ${limited.join(' and ')} side${limited.length > 1 ? 's' : ''} reached the warm-up's limit first (${fmt(w.limits.seconds, 1)} s or ${fmt(w.limits.connections)} connections), so the rounds may still include compiling.` : '.'))
  }
  const busy = r.loadAverage.start > r.cpus || r.loadAverage.end > r.cpus
  say(`Load average ${fmt(r.loadAverage.start, 1)} at the start and ${fmt(r.loadAverage.end, 1)} at the end on ${r.cpus} CPUs` +
    (busy ? ': other programs were competing for the CPUs, so speed and CPU figures vary from run to run.' : '.'))

  for (const x of r.real ?? []) {
    console.log('')
    if (x.error) {
      console.log(`  --${x.name}: failed: ${x.error}`)
      continue
    }
    const side = (mode) => x.rounds.filter((k) => k.mode === mode)
    const sum = (mode, f) => side(mode).reduce((s, k) => s + f(k), 0)
    const rate = (mode) => median(side(mode).map((k) => k.n / k.seconds))
    const ratios = side('recycled').map((k, i) => (k.n / k.seconds) / (side('plain')[i].n / side('plain')[i].seconds))
    row(`--${x.name} ${x.host}:${x.port}`.slice(0, 46), 'plain', 'recycled')
    row('connections made', sum('plain', (k) => k.n), sum('recycled', (k) => k.n))
    row('connections that failed', sum('plain', (k) => k.failed), sum('recycled', (k) => k.failed))
    row('new sockets created (socket(2) calls)', x.socketsCreated.plain, x.socketsCreated.recycled)
    row('connections on a reused socket', 0, sum('recycled', (k) => k.recycler.reusedConnections))
    row('client TIME_WAIT left behind (ss)', x.timeWait?.plain, x.timeWait?.recycled)
    row('client CPU per connection, µs', median(side('plain').map((k) => (k.cpuUserUs + k.cpuSystemUs) / k.n)), median(side('recycled').map((k) => (k.cpuUserUs + k.cpuSystemUs) / k.n)), 1)
    row(`connections per second (median of ${rounds} rounds)`, Math.round(rate('plain')), Math.round(rate('recycled')))
    console.log(`  recycled / plain: ${median(ratios).toFixed(2)}x (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}); both sides talk to one server, so TIME_WAIT is told apart by the local ports each side used`)
  }

  console.log('')
  const e = r.exhaustion
  if (!e || e.skipped) console.log(`  Port exhaustion: ${e?.skipped ?? 'skipped'}.`)
  else if (e.error) console.log(`  Port exhaustion: failed: ${e.error}`)
  else {
    const text = (s) => `${fmt(s.completed)} completed, ${fmt(s.failed)} failed${s.failed ? ` (${Object.keys(s.errors).join(', ')})` : ''}; client TIME_WAIT ${fmt(s.timeWait)}`
    console.log(`  Port exhaustion: ${fmt(e.n)} goodbye-then-close connections per side from a client limited to 100 local ports`)
    console.log(`  (ports ${e.portRange}), across two network namespaces (on loopback the kernel reuses TIME_WAIT ports, so this needs a real link):`)
    console.log(`    plain     ${text(e.plain)}`)
    console.log(`    recycled  ${text(e.recycled)}`)
    if (e.plain.errors?.EADDRNOTAVAIL) console.log(`  EADDRNOTAVAIL: no free local port left, all held by the client's TIME_WAIT.${e.recycled.failed === 0 ? ' The recycled client left the TIME_WAIT to the server and never ran out.' : ''}`)
    else if (e.plain.failed === 0) console.log('  Plain sockets did not run out of ports in this run (the kernel reused TIME_WAIT ports).')
  }
  console.log(`\n  (${fmt(r.seconds, 1)} s; the careful benchmark, with a C client as the ceiling, is npm run bench)`)
}
