import { createRequire } from 'node:module'
import { join } from 'node:path'
import pg from 'pg'
import { Redis } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { Agent } from 'undici'
import { describe, expect, it } from 'vitest'

// scripts/peer-range.mjs runs this first: the clients the tests import must be the ones installed
// under FDRECYCLE_PEERS_DIR (the ends of the peer ranges), or the adapter runs that follow prove
// nothing about those versions.
const peersDir = process.env.FDRECYCLE_PEERS_DIR

// vitest collects a skipped describe's body too: nothing in it may need the directory.
const requirePeer = peersDir ? createRequire(join(peersDir, 'package.json')) : undefined
const installed = requirePeer ? Object.keys((requirePeer('./package.json') as { dependencies: Record<string, string> }).dependencies) : []

describe.runIf(peersDir)('the peer clients come from FDRECYCLE_PEERS_DIR', () => {
  const imported: Record<string, () => unknown> = {
    pg: () => pg.Client,
    ioredis: () => Redis,
    ioredis5: () => Redis5,
    undici: () => Agent,
  }
  const loaded: Record<string, (m: any) => unknown> = {
    pg: (m) => m.Client,
    ioredis: (m) => m.Redis,
    ioredis5: (m) => m.Redis,
    undici: (m) => m.Agent,
  }

  it.each(installed)('%s', (name) => {
    expect(imported[name]!()).toBe(loaded[name]!(requirePeer!(name)))
  })
})
