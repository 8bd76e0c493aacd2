import pg from 'pg'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
const useAdapter = process.argv[2] === 'a'
const recycler = new SocketRecycler()
process.on('exit', (c) => console.log('exit', c))
const client = new pg.Client({ host: '127.0.0.1', port: 55432, database: 'postgres', user: 'postgres', ssl: true, ...(useAdapter ? { stream: pgStream(recycler) } : {}) })
const err = await client.connect().then(() => null, (e) => e)
console.log('err', err?.code, err?.message)
await new Promise((r) => setTimeout(r, 1500))
console.log(recycler.stats())
await recycler.close()
console.log('done')
