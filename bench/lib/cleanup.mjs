// Everything the bench starts (servers, namespaces, temp dirs) registers a synchronous undo here.
// The undos run in reverse order when the scenario is done, when it throws, on SIGINT/SIGTERM and
// at process exit, so that nothing outlives the run: servers are stopped by their pid, namespaces
// deleted by their name.

const undos = []
let installed = false

function runAll() {
  while (undos.length > 0) {
    const { what, fn } = undos.pop()
    try {
      fn()
    } catch (err) {
      process.stderr.write(`[bench] cleanup "${what}" failed: ${err.message}\n`)
    }
  }
}

function install() {
  if (installed) return
  installed = true
  process.on('exit', runAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      process.stderr.write(`\n[bench] ${signal}: cleaning up\n`)
      runAll()
      process.exit(130)
    })
  }
}

/**
 * Registers a synchronous undo; returns a function that runs it now (once) and unregisters it.
 * @param {string} what
 * @param {() => void} fn
 */
export function onCleanup(what, fn) {
  install()
  const entry = { what, fn }
  undos.push(entry)
  return () => {
    const i = undos.indexOf(entry)
    if (i < 0) return
    undos.splice(i, 1)
    fn()
  }
}

/** Runs every pending undo now (between scenarios). */
export function cleanupAll() {
  runAll()
}

/** Sends `signal` to `pid` if it is still alive; true if it was. */
export function killPid(pid, signal = 'SIGTERM') {
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

export function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}
