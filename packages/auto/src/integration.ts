import type { SocketRecycler } from '@fdrecycle/core'

/**
 * One client that @fdrecycle/auto recycles for an unchanged app. The names are the values of
 * FDRECYCLE_CLIENTS.
 */
export type IntegrationName = 'pg' | 'ioredis' | 'redis' | 'http' | 'fetch'

/** What an integration gets when it is installed. */
export interface IntegrationContext {
  /** the process's recycler (defaultRecycler(), configured from FDRECYCLE_OPTIONS) */
  readonly recycler: SocketRecycler
  /** one process.emitWarning, code FDRECYCLE_AUTO_SKIPPED, for a client left plain */
  skip(reason: string): void
}

export interface Integration {
  readonly name: IntegrationName
  /**
   * Patches the client wherever it is loaded, before or after this call, by `require` or
   * `import`, and leaves alone what the user set explicitly. Returns an undo for tests.
   */
  install(context: IntegrationContext): () => void
}
