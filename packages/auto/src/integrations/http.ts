// node:http and node:https: the global agents (what a request without its own `agent` uses)
// become RecycledAgent / RecycledHttpsAgent with the options of the agents they replace (Node's:
// keepAlive, scheduling 'lifo', timeout 5000). A global agent the app already replaced is its own.
import type httpTypes from 'node:http'
import type { Integration } from '../integration.js'
import { httpAdapter } from './http-adapter.js'
import { localRequire } from '../local-require.js'

/** Node's agents keep the options they were made with (not in @types/node). */
const optionsOf = (agent: httpTypes.Agent): httpTypes.AgentOptions => (agent as httpTypes.Agent & { options: httpTypes.AgentOptions }).options

export const httpAgents: Integration = {
  name: 'http',
  install({ recycler, skip }) {
    // required, not imported: see http-adapter.ts
    const http = localRequire('node:http') as typeof httpTypes
    const https = localRequire('node:https') as typeof import('node:https')
    const { RecycledAgent, RecycledHttpsAgent } = httpAdapter()
    const undo: (() => void)[] = []
    const httpAgent = http.globalAgent
    if (Object.getPrototypeOf(httpAgent) === http.Agent.prototype) {
      http.globalAgent = new RecycledAgent({ ...optionsOf(httpAgent), recycler })
      undo.push(() => {
        http.globalAgent = httpAgent
      })
    } else {
      skip('http.globalAgent was already replaced; it is left alone')
    }
    const httpsAgent = https.globalAgent
    if (Object.getPrototypeOf(httpsAgent) === https.Agent.prototype) {
      https.globalAgent = new RecycledHttpsAgent({ ...optionsOf(httpsAgent), recycler })
      undo.push(() => {
        https.globalAgent = httpsAgent
      })
    } else {
      skip('https.globalAgent was already replaced; it is left alone')
    }
    return () => {
      for (const u of undo) u()
    }
  },
}
