import { parseArgs } from 'node:util'

/**
 * The bench tools' command line: `options` as node:util's parseArgs takes them (`--help`/`-h` is
 * added); a bad option or `--help` prints `usage` and exits (2, or 0 for help). `int(name, min)`
 * reads an option as an integer of at least `min`, or exits with the usage.
 */
export function parseCli(options, usage) {
  let args
  try {
    args = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }).values
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}\n`)
    process.exit(2)
  }
  if (args.help) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  const int = (name, min) => {
    const v = Number(args[name])
    if (!Number.isInteger(v) || v < min) {
      process.stderr.write(`--${name} must be an integer >= ${min}\n${usage}\n`)
      process.exit(2)
    }
    return v
  }
  return { args, int }
}
