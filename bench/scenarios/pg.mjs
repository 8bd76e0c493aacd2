// Scenario 3a: node-postgres churn, pg.Client connect / SELECT 1 / end(), plain sockets vs
// `stream: pgStream(recycler)`, against a PostgreSQL started here (own processes).
import { runDbChurn } from '../lib/db-churn.mjs'
import { startPostgres } from '../lib/servers.mjs'

export const name = 'pg'
export const title = 'pg: Client connect / SELECT 1 / end() churn'

export function run(options) {
  return runDbChurn({
    kind: 'pg',
    label: 'pg',
    client: 'pg',
    adapter: '@fdrecycle/pg-adapter',
    adapterExports: ['pgStream'],
    start: startPostgres,
    describe: (server) => `PostgreSQL ${server.version}, fsync off, own processes`,
    credentials: (server) => ({ user: server.user, database: server.database }),
    note: 'PostgreSQL forks a backend per connection (the server CPU above includes its backends), which exits at Terminate.',
  }, options)
}
