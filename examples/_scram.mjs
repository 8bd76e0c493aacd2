import pg from 'pg'
import fs from 'node:fs'
import { SocketRecycler } from '@fdrecycle/core'
import { pgStream } from '@fdrecycle/pg-adapter'
const ca = fs.readFileSync('/tmp/pgman/run/tls/server.crt','utf8')
const useAdapter = process.argv[2] === 'a'
const recycler = new SocketRecycler()
const client = new pg.Client({ host: '127.0.0.1', port: 55432, database: 'postgres', user: 'fdrecycle_scram', password: 'secret', ssl: { ca }, enableChannelBinding: true, ...(useAdapter ? { stream: pgStream(recycler) } : {}) })
await client.connect()
console.log((await client.query('select current_user')).rows)
await client.end()
await recycler.close()
console.log('done')
