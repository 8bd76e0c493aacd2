// Entry of `node --import @fdrecycle/auto` and `node -r @fdrecycle/auto`: importing it installs
// the integrations once per process (the ESM and the CommonJS builds share one install).
export type { Integration, IntegrationContext, IntegrationName } from './integration.js'
