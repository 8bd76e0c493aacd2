import type { Integration } from '../integration.js'
import { fetch } from './fetch.js'
import { httpAgents } from './http.js'
import { ioredis } from './ioredis.js'
import { pg } from './pg.js'
import { redis } from './redis.js'

/** Every integration, in the order they are installed. */
export const integrations: readonly Integration[] = [pg, ioredis, redis, httpAgents, fetch]
