export { RecycledAgent, type RecycledAgentOptions } from './recycled-agent.js'
export { RecycledHttpsAgent, type RecycledHttpsAgentOptions } from './recycled-https-agent.js'
export {
  undiciConnector, type UndiciConnect, type UndiciConnectCallback, type UndiciConnectOptions, type UndiciConnectorOptions,
} from './undici-connector.js'
export { ConnectTimeoutError } from './connect-timeout-error.js'
export type { RecyclerOption } from './options.js'
