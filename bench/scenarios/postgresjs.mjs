// Scenario 3d: postgres.js churn, postgres() / SELECT 1 / sql.end() (Terminate), plain sockets vs
// `socket: postgresSocket(recycler)`, against a PostgreSQL started here (own processes).
import { runDbChurn } from '../lib/db-churn.mjs'
import { startPostgres } from '../lib/servers.mjs'

export const name = 'postgresjs'
export const title = 'postgres.js: postgres() / SELECT 1 / sql.end() churn'

export function run(options) {
  return runDbChurn({
    kind: 'postgresjs',
    label: 'postgres.js',
    client: 'postgres',
    adapter: '@fdrecycle/postgresjs-adapter',
    adapterExports: ['postgresSocket'],
    start: startPostgres,
    describe: (server) => `PostgreSQL ${server.version}, fsync off, own processes`,
    credentials: (server) => ({ user: server.user, database: server.database }),
    note: 'PostgreSQL forks a backend per connection (the server CPU above includes its backends), which exits at Terminate.',
  }, options)
}
