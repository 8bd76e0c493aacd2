// Debian's nginx on loopback with a throwaway config, for tests and benchmarks: free ports, pid,
// logs and temp paths in a temp dir, started in the foreground (`daemon off`) as our child and
// stopped by its pid. Used by test/setup/nginx.ts and bench/http-proxy.mjs.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/**
 * @typedef {object} NginxServer
 * @property {number} [keepaliveRequests] requests per connection before nginx closes it
 *   (1: every response carries `Connection: close` and nginx closes first)
 * @property {string} [keepaliveTimeout] idle keep-alive timeout (nginx syntax, e.g. '60s')
 * @property {{ cert: string, key: string }} [tls] HTTPS on this server (paths of a PEM certificate and key)
 */

/**
 * @typedef {object} RunningNginx
 * @property {Record<string, number>} ports one loopback port per server name
 * @property {string} host
 * @property {string} prefix the temp dir (config, logs, www/)
 * @property {number} pid the master process
 * @property {string} version
 * @property {() => string} errorLog
 * @property {() => Promise<void>} stop
 */

/** `nginx` from PATH or Debian's location, or null. */
export function nginxBinary() {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (dir && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx')
  }
  return null
}

async function freePort(host) {
  const server = net.createServer()
  server.listen(0, host)
  await once(server, 'listening')
  const { port } = /** @type {net.AddressInfo} */ (server.address())
  server.close()
  await once(server, 'close')
  return port
}

function serverBlock(port, host, www, { keepaliveRequests = 100, keepaliveTimeout = '60s', tls } = {}) {
  return `
    server {
      listen ${host}:${port}${tls ? ' ssl' : ''};${tls ? `
      ssl_certificate ${tls.cert};
      ssl_certificate_key ${tls.key};` : ''}
      server_name _;
      root ${www};
      keepalive_requests ${keepaliveRequests};
      keepalive_timeout ${keepaliveTimeout};
      location = /hello { default_type text/plain; return 200 "hello from nginx\\n"; }
      # sub_filter rewrites the body, so nginx drops Content-Length and sends it chunked.
      location /chunked/ {
        alias ${www}/;
        sub_filter_types text/plain;
        sub_filter 'MARK' 'mark';
        sub_filter_once off;
      }
      location / { }
    }`
}

function config(prefix, host, ports, servers, workerProcesses) {
  const www = join(prefix, 'www')
  const temp = join(prefix, 'temp')
  return `# throwaway config written by scripts/nginx.mjs
daemon off;
master_process on;
worker_processes ${workerProcesses};
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log ${join(prefix, 'access.log')};
  client_body_temp_path ${temp}/client_body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  types { text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  sendfile on;
${Object.keys(servers).map((name) => serverBlock(ports[name], host, www, servers[name])).join('\n')}
}
`
}

/**
 * An HTTP/1.0 request that nginx answers and closes first: the probe leaves its TIME_WAIT on
 * nginx's side, not on the client side that the tests count.
 */
function probeHttp(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    s.once('connect', () => s.write('HEAD /hello HTTP/1.0\r\n\r\n'))
    s.resume()
    s.once('end', () => {
      s.end()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** Resolves once every port accepts a connection; rejects if nginx exits first or after timeoutMs. */
async function waitReady(child, host, ports, timeoutMs, errorLog, probe) {
  const deadline = Date.now() + timeoutMs
  let exited = null
  child.once('exit', (code, signal) => (exited = { code, signal }))
  for (const port of ports) {
    for (;;) {
      if (exited) throw new Error(`nginx exited (${exited.code ?? exited.signal}) at start: ${errorLog().trim().split('\n').slice(-3).join(' | ')}`)
      if (await probe(host, port)) break
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${host}:${port} within ${timeoutMs} ms: ${errorLog()}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Starts nginx with one `server` per entry of `servers`, each on its own free loopback port, and
 * serves `files` (path under www/ → contents). Retries on a port taken between probe and bind.
 * Elsewhere than on this host's loopback (`exec: ['ip', 'netns', 'exec', NS]` runs nginx in a
 * network namespace), give the `ports` and a `probe(host, port)` that can reach them.
 * @param {{ servers: Record<string, NginxServer>, files?: Record<string, string | Buffer>, host?: string, workerProcesses?: number, startTimeoutMs?: number, exec?: string[], ports?: Record<string, number>, probe?: (host: string, port: number) => Promise<boolean> }} options
 * @returns {Promise<RunningNginx>}
 */
export async function startNginx({ servers, files = {}, host = '127.0.0.1', workerProcesses = 1, startTimeoutMs = 15_000, exec = [], ports: fixedPorts, probe = probeHttp }) {
  const binary = nginxBinary()
  if (!binary) throw new Error('nginx is not installed (Debian: apt-get install nginx)')
  const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '')
  const prefix = mkdtempSync(join(tmpdir(), 'fdrecycle-nginx-'))
  // nginx's workers run as an unprivileged user when the master is root: they must read www/.
  chmodSync(prefix, 0o755)
  const www = join(prefix, 'www')
  mkdirSync(join(prefix, 'temp'), { recursive: true })
  mkdirSync(www, { recursive: true, mode: 0o755 })
  for (const [path, contents] of Object.entries(files)) {
    const file = join(www, path)
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 })
    writeFileSync(file, contents, { mode: 0o644 })
  }
  const errorLog = () => {
    try {
      return readFileSync(join(prefix, 'error.log'), 'utf8')
    } catch {
      return ''
    }
  }
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const ports = { ...fixedPorts }
    for (const name of Object.keys(servers)) ports[name] ??= await freePort(host)
    const conf = join(prefix, 'nginx.conf')
    writeFileSync(conf, config(prefix, host, ports, servers, workerProcesses))
    // `ip netns exec` execs its command: the child's pid is nginx's master either way.
    const [cmd, ...pre] = [...exec, binary]
    const child = spawn(cmd, [...pre, '-c', conf, '-p', prefix, '-e', join(prefix, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      process.kill(child.pid, 'SIGTERM') // nginx: fast shutdown, workers included
      const timer = setTimeout(() => {
        for (const pid of [...childrenOf(child.pid), child.pid]) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {}
        }
      }, 5000)
      await exited
      clearTimeout(timer)
    }
    // The test runner or benchmark dies without its teardown: nginx must not outlive it.
    const onExit = () => {
      try {
        process.kill(child.pid, 'SIGTERM')
      } catch {}
      rmSync(prefix, { recursive: true, force: true })
    }
    process.once('exit', onExit)
    try {
      await waitReady(child, host, Object.values(ports), startTimeoutMs, () => errorLog() + stderr, probe)
    } catch (err) {
      lastError = err
      await stop()
      process.removeListener('exit', onExit)
      if (/Address already in use/.test(errorLog() + stderr)) continue
      rmSync(prefix, { recursive: true, force: true })
      throw err
    }
    return {
      ports,
      host,
      prefix,
      pid: child.pid,
      version,
      errorLog,
      async stop() {
        await stop()
        process.removeListener('exit', onExit)
        rmSync(prefix, { recursive: true, force: true })
      },
    }
  }
  rmSync(prefix, { recursive: true, force: true })
  throw lastError
}
