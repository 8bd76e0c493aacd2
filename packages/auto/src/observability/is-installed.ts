import { createRequire } from 'node:module'
import { join } from 'node:path'
import { InvalidArgumentError } from '@fdrecycle/core'

/** A require that resolves as the app's own code does: from its working directory. */
function appRequire(from: string): NodeJS.Require {
  // createRequire wants a file: any name inside the directory resolves like a module there.
  return createRequire(join(from, 'noop.js'))
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`isInstalled(name): expected a package name, received ${String(name)}`)
}

/**
 * Whether the app can load `name`: resolved from `from` (the process's working directory unless
 * given), as the app's own `require(name)` would be. The observability backends are installed
 * only where the app has the library, so that @fdrecycle/auto never brings one in.
 */
export function isInstalled(name: string, from: string = process.cwd()): boolean {
  checkName(name)
  try {
    appRequire(from).resolve(name)
    return true
  } catch {
    return false
  }
}

/** The app's copy of `name` (its registry, its global provider), loaded as the app loads it. */
export function loadFromApp<T>(name: string, from: string = process.cwd()): T {
  checkName(name)
  return appRequire(from)(name) as T
}
