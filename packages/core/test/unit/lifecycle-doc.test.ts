import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { TRANSITIONS, type FdState } from '../../src/lifecycle.js'

// docs/lifecycle.md draws the fd's life as a mermaid state diagram: its edges must be exactly the
// moves TRANSITIONS allows (PooledFd#setState throws on any other), no more and no fewer.

const doc = readFileSync(new URL('../../../../docs/lifecycle.md', import.meta.url), 'utf8')

function diagramEdges(markdown: string): Set<string> {
  const block = /```mermaid\n([\s\S]*?)```/.exec(markdown)?.[1]
  if (!block) throw new Error('docs/lifecycle.md has no mermaid block')
  const edges = new Set<string>()
  for (const line of block.split('\n')) {
    const m = /^\s*(\S+)\s*-->\s*([^\s:]+)/.exec(line)
    if (!m || m[1] === '[*]' || m[2] === '[*]') continue
    const name = (s: string) => s.replaceAll('_', '-')
    edges.add(`${name(m[1]!)} -> ${name(m[2]!)}`)
  }
  return edges
}

describe('docs/lifecycle.md', () => {
  it('draws exactly the transitions of TRANSITIONS', () => {
    const drawn = diagramEdges(doc)
    const allowed = new Set(
      (Object.entries(TRANSITIONS) as [FdState, readonly FdState[]][]).flatMap(([from, tos]) => tos.map((to) => `${from} -> ${to}`)),
    )
    expect([...drawn].filter((e) => !allowed.has(e)), 'drawn but not allowed').toEqual([])
    expect([...allowed].filter((e) => !drawn.has(e)), 'allowed but not drawn').toEqual([])
  })

  it('names only states that exist', () => {
    const states = new Set(Object.keys(TRANSITIONS))
    for (const edge of diagramEdges(doc)) {
      for (const state of edge.split(' -> ')) expect(states.has(state), state).toBe(true)
    }
  })
})
