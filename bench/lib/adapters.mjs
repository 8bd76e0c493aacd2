// The adapters are written in parallel with the bench: a scenario whose adapter is not built yet
// (no dist, or the export missing) is skipped with that reason instead of failing the run.
import { SkipError } from './servers.mjs'

/** Imports `pkg` and checks that it exports `names`; throws a SkipError saying what is missing. */
export async function requireAdapter(pkg, names) {
  let mod
  try {
    mod = await import(pkg)
  } catch (err) {
    throw new SkipError(`adapter not built: ${pkg} does not load (${err.code ?? err.message.split('\n')[0]}); run npm run build`)
  }
  const missing = names.filter((n) => typeof mod[n] !== 'function')
  if (missing.length > 0) throw new SkipError(`adapter not built: ${pkg} does not export ${missing.join(', ')} yet`)
  return mod
}

/** Imports a client library the scenario drives (pg, ioredis, undici); SkipError if missing. */
export async function requireClient(pkg) {
  try {
    return await import(pkg)
  } catch (err) {
    throw new SkipError(`${pkg} is not installed (${err.code ?? err.message.split('\n')[0]})`)
  }
}
