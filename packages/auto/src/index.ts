// Entry of `node --import @fdrecycle/auto` and `node -r @fdrecycle/auto`: importing it installs
// the integrations once per process (the ESM and the CommonJS builds share one install).
import { installOnce } from './install.js'

export type { Integration, IntegrationContext, IntegrationName } from './integration.js'
export { AutoConfigError } from './config.js'
export type { InstallResult } from './install.js'

/** What the preload installed in this process (the integrations, or why none). */
export const installed = installOnce()
