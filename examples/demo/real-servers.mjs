// --pg <url> and --redis <url>: the same churn against servers you name (nothing is started).
// pg: new pg.Client, connect, SELECT 1, end(); ioredis: connect, PING, quit(). Plain vs through the
// adapters. Each connection's local port is recorded, so that the TIME_WAIT entries towards the
// server's port can be told apart by mode (both modes talk to the same server), and its kernel
// socket (inode), so that the sockets each mode created are counted, not assumed.
import { socketInode } from './churn.mjs'

/** @returns {Promise<(mode: 'plain' | 'recycled', recycler: any) => { localPorts: Set<number>, inodes: Set<string>, request: (i: number, done: (err?: Error | null) => void) => void, port: number, host: string }>} */
export async function pgWorkload(url) {
  const { default: pg } = await import('pg')
  const { pgStream } = await import('@fdrecycle/pg-adapter')
  const parsed = new URL(url)
  const port = Number(parsed.port || 5432)
  return (mode, recycler) => {
    const localPorts = new Set()
    const inodes = new Set()
    const config = { connectionString: url, ...(mode === 'recycled' ? { stream: pgStream(recycler) } : {}) }
    return {
      host: parsed.hostname,
      port,
      localPorts,
      inodes,
      request(i, done) {
        const client = new pg.Client(config)
        client.connect()
          .then(() => {
            const stream = client.connection?.stream
            if (stream?.localPort) localPorts.add(stream.localPort)
            const inode = socketInode(stream)
            if (inode) inodes.add(inode)
            return client.query('SELECT 1')
          })
          .then(() => client.end())
          .then(() => done(null), (err) => {
            client.end().catch(() => {})
            done(err)
          })
      },
    }
  }
}

export async function redisWorkload(url) {
  const { default: Redis } = await import('ioredis')
  const { recycledConnector } = await import('@fdrecycle/redis-adapter')
  const parsed = new URL(url)
  const port = Number(parsed.port || 6379)
  return (mode, recycler) => {
    const localPorts = new Set()
    const inodes = new Set()
    const options = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(mode === 'recycled' ? { Connector: recycledConnector(recycler) } : {}) }
    return {
      host: parsed.hostname,
      port,
      localPorts,
      inodes,
      request(i, done) {
        const redis = new Redis(url, options)
        let failed = null
        redis.on('error', (err) => (failed ??= err))
        redis.once('end', () => done(failed))
        redis.connect()
          .then(() => {
            if (redis.stream?.localPort) localPorts.add(redis.stream.localPort)
            const inode = socketInode(redis.stream)
            if (inode) inodes.add(inode)
            return redis.ping()
          })
          .then(() => redis.quit())
          .catch((err) => {
            failed ??= err
            redis.disconnect()
          })
      },
    }
  }
}
