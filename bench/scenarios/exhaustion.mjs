// Scenario 6: port exhaustion off loopback. Two network namespaces joined by a veth pair
// (addresses only inside them), the client's ip_local_port_range cut to 100 ports; a client that
// says goodbye and ends at once (as pg does with Terminate) connects N times to a server that
// closes after the goodbye. Plain sockets send the first FIN and keep a TIME_WAIT per connection
// (60 s): after ~100 connections connect() fails with EADDRNOTAVAIL. Recycled sockets withhold
// the FIN until the server's, so the server keeps the TIME_WAIT and the client's ports stay free.
// Loopback would not show it: tcp_tw_reuse=2 reuses TIME_WAIT ports on loopback only.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { target } from '../lib/ab.mjs'
import { onCleanup } from '../lib/cleanup.mjs'
import { BENCH_DIR, runJson, startLineServer } from '../lib/procs.mjs'
import { SkipError } from '../lib/servers.mjs'
import { timeWaitTowards } from '../lib/system.mjs'

export const name = 'exhaustion'
export const title = 'Port exhaustion: 100 client ports, goodbye-then-close, two namespaces over veth'

const SERVER_IP = '10.213.0.1'
const CLIENT_IP = '10.213.0.2'
const PORT_RANGE = '40000 40099'

function ip(args, what) {
  const r = spawnSync('ip', args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error(`${what}: ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`)
  return r.stdout
}

/** Makes the two namespaces and the veth pair; registers their deletion. */
function makeNamespaces() {
  const tag = `fdrb${process.pid}`
  const cli = `${tag}-cli`
  const srv = `${tag}-srv`
  const probe = spawnSync('ip', ['netns', 'add', srv], { encoding: 'utf8' })
  if (probe.error) throw new SkipError(`ip (iproute2) is not available: ${probe.error.message}`)
  if (probe.status !== 0) throw new SkipError(`ip netns is not permitted here: ${probe.stderr.trim()}`)
  const dropSrv = onCleanup(`netns ${srv}`, () => spawnSync('ip', ['netns', 'del', srv]))
  ip(['netns', 'add', cli], 'netns add')
  const dropCli = onCleanup(`netns ${cli}`, () => spawnSync('ip', ['netns', 'del', cli]))
  // Made inside the client namespace with its peer in the server's: nothing appears on the host.
  ip(['-n', cli, 'link', 'add', `${tag}c`, 'type', 'veth', 'peer', 'name', `${tag}s`, 'netns', srv], 'veth')
  ip(['-n', cli, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', `${tag}c`], 'addr (client)')
  ip(['-n', srv, 'addr', 'add', `${SERVER_IP}/24`, 'dev', `${tag}s`], 'addr (server)')
  for (const [ns, dev] of [[cli, `${tag}c`], [srv, `${tag}s`]]) {
    ip(['-n', ns, 'link', 'set', dev, 'up'], 'link up')
    ip(['-n', ns, 'link', 'set', 'lo', 'up'], 'lo up')
  }
  const r = spawnSync('ip', ['netns', 'exec', cli, 'sysctl', '-w', `net.ipv4.ip_local_port_range=${PORT_RANGE}`], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`sysctl ip_local_port_range in ${cli}: ${r.stderr.trim()}`)
  const sysctl = (key) => spawnSync('ip', ['netns', 'exec', cli, 'sysctl', '-n', key], { encoding: 'utf8' }).stdout.trim().replace(/\s+/g, ' ')
  return {
    cli,
    srv,
    settings: { ip_local_port_range: sysctl('net.ipv4.ip_local_port_range'), tcp_tw_reuse: sysctl('net.ipv4.tcp_tw_reuse'), tcp_timestamps: sysctl('net.ipv4.tcp_timestamps') },
    drop: () => (dropCli(), dropSrv()),
  }
}

export async function run({ quick, log, n = 5000 }) {
  // n: the issue's 5000, also in --quick (the plain side fails fast once ports run out); the demo asks for fewer
  const inFlight = 8
  const ns = makeNamespaces()
  log(`exhaustion: namespaces ${ns.cli} (${CLIENT_IP}, ports ${ns.settings.ip_local_port_range}, tcp_tw_reuse ${ns.settings.tcp_tw_reuse}) and ${ns.srv} (${SERVER_IP})`)
  const out = { params: { n, inFlight, ...ns.settings, server: `${SERVER_IP} (goodbye server, own process, own namespace)`, client: CLIENT_IP, quick } }
  try {
    const server = await startLineServer('ip', ['netns', 'exec', ns.srv, process.execPath, join(BENCH_DIR, 'clients', 'goodbye-server.mjs'), SERVER_IP, '2'], { name: 'goodbye-server (netns)' })
    const ports = { plain: server.ports[0], recycled: server.ports[1] } // each mode its own port: plain's TIME_WAITs must not starve recycled
    try {
      for (const mode of ['plain', 'recycled']) {
        const spec = { kind: 'goodbye', mode, n, inFlight, target: { host: SERVER_IP, port: ports[mode] } }
        const r = await runJson('ip', ['netns', 'exec', ns.cli, process.execPath, join(BENCH_DIR, 'clients', 'churn-worker.mjs'), '--once', JSON.stringify(spec)], { name: `exhaustion client (${mode})`, timeoutMs: 180_000 })
        out[mode] = {
          completed: r.completed,
          failed: r.failed,
          errors: r.errors,
          seconds: r.seconds,
          clientTimeWait: timeWaitTowards(SERVER_IP, ports[mode], ns.cli),
          recycler: r.recycler,
        }
        log(`exhaustion: ${mode}: ${r.completed} completed, ${r.failed} failed ${JSON.stringify(r.errors)} in ${r.seconds.toFixed(1)} s; client TIME_WAIT ${out[mode].clientTimeWait}`)
      }
    } finally {
      server.stop()
    }
  } finally {
    ns.drop()
  }
  const pct = (m) => Math.round((out[m].completed / n) * 1000) / 10
  out.targets = [
    target('recycled connections completed', pct('recycled'), '==', 100, { unit: '%', note: `plain: ${out.plain.completed} completed, ${out.plain.failed} failed` }),
  ]
  out.notes = []
  if (out.plain.failed === 0) out.notes.push('Plain sockets did not run out of ports: the kernel reused TIME_WAIT ports (check tcp_tw_reuse in the client namespace) or the run outlived TIME_WAIT.')
  if (out.recycled.failed > 0) out.notes.push(`Recycled sockets failed ${out.recycled.failed} times (${JSON.stringify(out.recycled.errors)}): see the recycler stats in the JSON (finSentFirst counts connections where our FIN went first).`)
  const text = (m) => `${out[m].completed.toLocaleString('en-US')} completed / ${out[m].failed.toLocaleString('en-US')} failed${out[m].failed ? ` (${Object.keys(out[m].errors).join(', ')})` : ''}`
  out.rows = [{
    scenario: `Port exhaustion, ${n.toLocaleString('en-US')} goodbye-then-close, 100 ports`,
    plainText: text('plain'),
    recycledText: text('recycled'),
    ratioText: `${pct('recycled')}% vs ${pct('plain')}% completed`,
    timeWait: { n, plain: out.plain.clientTimeWait, recycled: out.recycled.clientTimeWait },
    target: out.targets[0],
  }]
  return out
}
