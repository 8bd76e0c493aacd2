import type { Integration } from '../integration.js'

/** Every integration, in the order they are installed. */
export const integrations: readonly Integration[] = []
