import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { DEFAULT_OPTIONS } from '../../src/index.js'
import { newCounters } from '../../src/stats.js'

// The options table and the stats fields are written out twice: in the repository's README and
// in the package's own (the one the registry shows). Both must name every option with its default
// and every stats() field, and nothing else.
const READMES = {
  'README.md': fileURLToPath(new URL('../../../../README.md', import.meta.url)),
  'packages/core/README.md': fileURLToPath(new URL('../../README.md', import.meta.url)),
}
const STATS_FIELDS = ['mode', ...Object.keys(newCounters()), 'idle', 'cooling', 'active', 'draining']

/** `| \`name\` | \`default\` ... |` rows of the table under the Options heading. */
function optionRows(readme: string): Map<string, string> {
  const section = readme.split('## Options (`new SocketRecycler(options)`)')[1]!.split('\n## ')[0]!
  const rows = new Map<string, string>()
  for (const line of section.split('\n')) {
    const m = /^\| `(\w+)` \| (.+?) \|/.exec(line)
    if (m) rows.set(m[1]!, m[2]!)
  }
  return rows
}

describe('the READMEs document every option and stats field', () => {
  for (const [name, path] of Object.entries(READMES)) {
    const readme = readFileSync(path, 'utf8')
    it(`${name}: one row per option, with its default`, () => {
      const rows = optionRows(readme)
      expect([...rows.keys()].sort()).toEqual(Object.keys(DEFAULT_OPTIONS).sort())
      for (const [option, value] of Object.entries(DEFAULT_OPTIONS)) {
        const shown = typeof value === 'string' ? `\`'${value}'\`` : `\`${value}\``
        expect(rows.get(option), option).toContain(shown)
      }
    })
    it(`${name}: every stats() field`, () => {
      for (const field of STATS_FIELDS) expect(readme, field).toMatch(new RegExp(`\\b${field}\\b`))
    })
  }
})
