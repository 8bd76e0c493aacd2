// Where a client's module is patched: require-in-the-middle (the hook OpenTelemetry's
// instrumentations use) for every load from now on, and require.cache for what a module loaded
// before this preload ran.
//
// pg, ioredis and undici are CommonJS. An ESM `import` of them reaches their main file through
// Node's ESM loader (Module._load, which require-in-the-middle does not wrap), but every file
// *inside* the package is loaded by the package's own `require()`, which it does wrap: so the
// integrations hook internal files (pg/lib/connection.js, ioredis/built/Redis.js), never only a
// main file. test/esm-import.test.ts checks this on the running Node.
import { readFileSync } from 'node:fs'
import { sep } from 'node:path'
import { Hook } from 'require-in-the-middle'
import { localRequire } from './local-require.js'

/**
 * A package's file as require-in-the-middle names it: its path without `.js` (or `/index.js`):
 * `pg/lib/connection` for pg/lib/connection.js, `undici` for undici's main index.js.
 */
export type ModuleFile = string

/**
 * Called once for each copy of the file (one per installed copy of the package): `moduleExports` is
 * what the file exported, `basedir` the package's directory. `loadedBefore`: the file was already
 * in require.cache when the hook was installed, so the return value reaches nobody (patch in place).
 * Returns the exports to hand out.
 */
export type Patch = (moduleExports: unknown, basedir: string, loadedBefore: boolean) => unknown

type OnLoad = (moduleExports: unknown, basedir: string) => unknown

/** What each hooked file's handlers are; one require-in-the-middle hook serves them all. */
const handlers = new Map<ModuleFile, Set<OnLoad>>()
let hook: Hook | null = null

/**
 * One hook for every file, made anew when the set changes: each hook resolves the path of every
 * `require()` it sees, so one per file would multiply that work for the whole app. The previous
 * hook is the newest patch of `require` when this runs (install is synchronous), so its unhook
 * restores what it wrapped.
 */
function rehook(): void {
  hook?.unhook()
  hook = null
  if (handlers.size === 0) return
  hook = new Hook([...handlers.keys()], { internals: true }, (moduleExports, name, basedir) => {
    let out: unknown = moduleExports
    for (const onLoad of handlers.get(name) ?? []) out = onLoad(out, basedir ?? '')
    return out as typeof moduleExports
  })
}

/**
 * Patches `file` (`pg/lib/connection`: see ModuleFile) wherever and whenever it is loaded by
 * `require` (also below an ESM `import` of its package). Returns the unhook.
 */
export function hookFile(file: ModuleFile, patch: Patch): () => void {
  const seen = new WeakSet<object>()
  const once = (moduleExports: unknown, basedir: string, loadedBefore: boolean): unknown => {
    if ((typeof moduleExports !== 'object' && typeof moduleExports !== 'function') || moduleExports === null) return moduleExports
    if (seen.has(moduleExports)) return moduleExports
    seen.add(moduleExports)
    const patched = patch(moduleExports, basedir, loadedBefore)
    if ((typeof patched === 'object' || typeof patched === 'function') && patched !== null) seen.add(patched)
    return patched
  }
  for (const copy of loadedCopies(file)) once(copy.exports, copy.basedir, true)
  const onLoad: OnLoad = (moduleExports, basedir) => once(moduleExports, basedir, false)
  const set = handlers.get(file) ?? new Set<OnLoad>()
  set.add(onLoad)
  handlers.set(file, set)
  rehook()
  return () => {
    set.delete(onLoad)
    if (set.size === 0) handlers.delete(file)
    rehook()
  }
}

/** Every copy of `file` already in require.cache (a module required before this hook). */
export function loadedCopies(file: ModuleFile): { filename: string; exports: unknown; basedir: string }[] {
  const found: { filename: string; exports: unknown; basedir: string }[] = []
  const path = `${sep}node_modules${sep}${file.split('/').join(sep)}`
  const suffixes = [`${path}.js`, `${path}${sep}index.js`]
  for (const [filename, module] of Object.entries(localRequire.cache)) {
    const suffix = suffixes.find((s) => filename.endsWith(s))
    if (!module || !suffix) continue
    const basedir = filename.slice(0, filename.length - suffix.length) + `${sep}node_modules${sep}${packageName(file).split('/').join(sep)}`
    found.push({ filename, exports: module.exports, basedir })
  }
  return found
}

/** `pg` of `pg/lib/connection`, `@scope/name` of `@scope/name/x`. */
export function packageName(file: ModuleFile): string {
  const parts = file.split('/')
  return file.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
}

/** The `version` in `<basedir>/package.json`, or null if it cannot be read. */
export function packageVersion(basedir: string): string | null {
  try {
    const manifest = JSON.parse(readFileSync(`${basedir}${sep}package.json`, 'utf8')) as { version?: unknown }
    return typeof manifest.version === 'string' ? manifest.version : null
  } catch {
    return null
  }
}

/** A tested range of a client: from `min` (major.minor.patch) through every version of `maxMajor`. */
export interface VersionRange {
  readonly min: readonly [number, number, number]
  readonly maxMajor: number
  /** as in the adapters' peerDependencies, for messages */
  readonly text: string
}

/** Whether `version` (x.y.z, a prerelease counts as its release) is in `range`. */
export function inRange(version: string, range: VersionRange): boolean {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version)
  if (!match) return false
  const v = [Number(match[1]), Number(match[2]), Number(match[3])] as const
  if (v[0] > range.maxMajor) return false
  for (let i = 0; i < 3; i++) {
    if (v[i]! !== range.min[i]!) return v[i]! > range.min[i]!
  }
  return true
}
