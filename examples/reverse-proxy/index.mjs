#!/usr/bin/env node
// node examples/reverse-proxy --listen 8080 --upstream http://127.0.0.1:9001 --upstream http://127.0.0.1:9002
// Needs the packages built first: `npm run build` at the repository root.
import { parseProxyArgs, startProxy, USAGE } from './proxy.mjs'

let config
try {
  config = parseProxyArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`${err.message}\n\n${USAGE}\n`)
  process.exit(2)
}
if (config.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}

const proxy = await startProxy(config)
const mode = proxy.recycler.stats().mode
process.stdout.write(
  `reverse-proxy listening on ${proxy.url} (${mode}) -> ${config.upstreams.map((u) => u.origin).join(', ')}; ` +
    `stats at ${proxy.url}${config.adminPath}\n`,
)

let stopping = false
async function stop(signal) {
  if (stopping) process.exit(1) // a second signal: leave now
  stopping = true
  process.stdout.write(`${JSON.stringify({ signal, ...proxy.stats() }, null, 2)}\n`)
  await proxy.close()
  process.exit(0)
}
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))
