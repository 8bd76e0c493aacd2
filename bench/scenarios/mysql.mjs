// Scenario 3c: mysql2 churn, createConnection / SELECT 1 / end() (COM_QUIT), plain sockets vs
// `stream: mysqlStream(recycler)`, against a MariaDB started here (own process).
import { runDbChurn } from '../lib/db-churn.mjs'
import { startMariaDb } from '../lib/servers.mjs'

export const name = 'mysql'
export const title = 'mysql2: createConnection / SELECT 1 / end() churn (MariaDB)'

export function run(options) {
  return runDbChurn({
    kind: 'mysql',
    label: 'mysql2',
    client: 'mysql2',
    adapter: '@fdrecycle/mysql-adapter',
    adapterExports: ['mysqlStream'],
    start: startMariaDb,
    describe: (server) => `MariaDB ${server.version}, own process`,
    credentials: (server) => ({ user: server.user, password: server.password, database: server.database }),
    note: "mysql2's end() sends COM_QUIT and waits for the server's close: plain sockets leave the TIME_WAIT on the server too; the gain is fds and socket()/close() calls.",
  }, options)
}
