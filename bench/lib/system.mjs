// What the machine is, and what its kernel says (ss, strace), for the report.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

/**
 * Client-side TIME_WAIT entries towards host:port (`ss`, filtered on the destination, because on
 * loopback both sides' entries are in the same table). Null if `ss` is missing.
 * @param {string | null} host
 * @param {number} port
 * @param {string} [netns] run inside this network namespace
 */
export function timeWaitTowards(host, port, netns) {
  const filter = host ? `( dst ${host} and dport = :${port} )` : `( dport = :${port} )`
  const args = ['-Htan', 'state', 'time-wait', filter]
  try {
    const out = netns
      ? execFileSync('ip', ['netns', 'exec', netns, 'ss', ...args], { encoding: 'utf8' })
      : execFileSync('ss', args, { encoding: 'utf8' })
    return out.split('\n').filter((l) => l.trim() !== '').length
  } catch {
    return null
  }
}

export function hasCommand(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.status === 0 && !r.error
}

/** The machine, for the results file: the figures mean little without it. */
export function machineInfo() {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown'
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) cpuModel = m[1].trim()
  } catch {}
  let distro = 'unknown'
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro
  } catch {}
  const sysctl = (key) => {
    try {
      return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim().replace(/\s+/g, ' ')
    } catch {
      return null
    }
  }
  return {
    cpuModel,
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    distro,
    node: process.version,
    v8: process.versions.v8,
    libuv: process.versions.uv,
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    sysctl: {
      'net.ipv4.ip_local_port_range': sysctl('net.ipv4.ip_local_port_range'),
      'net.ipv4.tcp_tw_reuse': sysctl('net.ipv4.tcp_tw_reuse'),
      'net.ipv4.tcp_fin_timeout': sysctl('net.ipv4.tcp_fin_timeout'),
    },
  }
}

/** The commit measured, and whether the packages had uncommitted changes (the figures then belong to no commit). */
export function sourceInfo(root) {
  const git = (args) => {
    const r = spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' })
    return r.status === 0 ? r.stdout : null
  }
  const commit = git(['rev-parse', '--short', 'HEAD'])?.trim() ?? null
  // What the figures run: the packages' sources (tests and docs do not change them).
  const dirty = git(['status', '--porcelain', '--', 'packages/*/src'])
  return { commit, packagesModified: dirty === null ? null : dirty.split('\n').filter(Boolean).map((l) => l.slice(3)) }
}

/** "AMD EPYC, 2 cores, Linux 6.18, Node v20.20.2" */
export function machineLine(m) {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGB} GB, Linux ${m.kernel}, ${m.distro}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' ')}`
}
