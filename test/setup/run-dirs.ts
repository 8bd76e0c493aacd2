import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const TMP = '/tmp'

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A throwaway directory for a test run's servers, marked with this process's pid. Dirs under the
 * same prefix whose owner is gone (a run killed before its teardown) are handed to `stopStale` to
 * stop what they still run, then removed.
 */
export function runDir(prefix: string, stopStale: (dir: string) => void, log: (message: string) => void): string {
  for (const entry of readdirSync(TMP, { withFileTypes: true })) {
    // (a file under the prefix, such as the real-path matrix's report, is no run's directory)
    if (!entry.isDirectory() || !entry.name.startsWith(prefix)) continue
    const dir = join(TMP, entry.name)
    let owner = 0
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'))
    } catch {}
    if (owner > 0 && pidAlive(owner)) continue
    log(`removing ${dir}, left by process ${owner || '?'} that is gone`)
    stopStale(dir)
    rmSync(dir, { recursive: true, force: true })
  }
  // Made under another name and renamed once marked: a run starting beside this one (two test runs
  // at once) never sees the directory without its owner, and so never takes it for a stale one.
  const staging = mkdtempSync(join(TMP, `.staging-${prefix}`))
  writeFileSync(join(staging, 'owner.pid'), String(process.pid))
  const dir = join(TMP, `${prefix}${staging.slice(join(TMP, `.staging-${prefix}`).length)}`)
  renameSync(staging, dir)
  return dir
}
