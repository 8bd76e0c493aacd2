import { createRequire } from 'node:module'
import { join } from 'node:path'
import pg from 'pg'
import { Redis } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { Agent } from 'undici'
import mysql from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import postgres from 'postgres'
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
    mysql2: () => [mysql.createConnection, mysqlPromise.createConnection],
    postgres: () => postgres,
  }
  const loaded: Record<string, (m: any) => unknown> = {
    pg: (m) => m.Client,
    ioredis: (m) => m.Redis,
    ioredis5: (m) => m.Redis,
    undici: (m) => m.Agent,
    mysql2: (m) => [m.createConnection, requirePeer!('mysql2/promise').createConnection],
    postgres: (m) => m,
  }

  it.each(installed)('%s', (name) => {
    const fromTests = [imported[name]!()].flat()
    const fromPeers = [loaded[name]!(requirePeer!(name))].flat()
    expect(fromTests).toHaveLength(fromPeers.length)
    fromTests.forEach((value, i) => expect(value).toBe(fromPeers[i]))
  })
})
