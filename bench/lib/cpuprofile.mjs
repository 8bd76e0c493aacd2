// Reading V8 CPU profiles (.cpuprofile): self time per function and per file (bench/profile.mjs,
// bench/demo-profile.mjs).

/** Self time per function (µs) of a .cpuprofile, keyed by "name file:line", and per file. */
export function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node)
  const self = new Map()
  const { samples } = profile
  // Every sample weighs the mean interval. Not timeDeltas: on a loaded machine the sampling thread
  // is itself descheduled, and the sample after such a gap would carry the whole gap (a syscall
  // that wakes the server, such as shutdown or connect, drew tens of µs per connection that way).
  const weight = samples.length > 0 ? (profile.endTime - profile.startTime) / samples.length : 0
  for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + weight)
  const fns = new Map()
  const files = new Map()
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame
    const file = shortUrl(cf.url)
    let key = `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`
    // A native function is named after its caller too: koffi's calls all carry one name (that of
    // the last function declared), and Node's bindings (connect, close...) are clearer with theirs.
    if (!file && !cf.functionName.startsWith('(')) key = `${key} (native) <- ${parentOf.get(id)?.callFrame.functionName || '?'}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    const where = file ? file.replace(/:\d+$/, '') : cf.functionName.startsWith('(') ? cf.functionName : '(native)'
    files.set(where, (files.get(where) ?? 0) + us)
  }
  return { fns, files }
}

function shortUrl(url) {
  if (!url) return ''
  let u = url.replace(/^file:\/\//, '')
  const m = /(?:packages|node_modules|bench|examples)\/.*$/.exec(u)
  if (m) u = m[0]
  return u.replace(/^packages\/([^/]+)\/(?:dist\/(?:esm|cjs)|src)\//, '$1/')
}
