import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
  for (const name of readdirSync(TMP)) {
    if (!name.startsWith(prefix)) continue
    const dir = join(TMP, name)
    let owner = 0
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'))
    } catch {}
    if (owner > 0 && pidAlive(owner)) continue
    log(`removing ${dir}, left by process ${owner || '?'} that is gone`)
    stopStale(dir)
    rmSync(dir, { recursive: true, force: true })
  }
  const dir = mkdtempSync(join(TMP, prefix))
  writeFileSync(join(dir, 'owner.pid'), String(process.pid))
  return dir
}
