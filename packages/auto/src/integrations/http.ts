// node:http and node:https: the global agents (what a request without its own `agent` uses)
// become RecycledAgent / RecycledHttpsAgent with the options of the agents they replace (Node's:
// keepAlive, scheduling 'lifo', timeout 5000). A global agent the app already replaced is its own.
import http from 'node:http'
import https from 'node:https'
import { RecycledAgent, RecycledHttpsAgent } from '@fdrecycle/http-adapter'
import type { Integration } from '../integration.js'

/** Node's agents keep the options they were made with (not in @types/node). */
const optionsOf = (agent: http.Agent): http.AgentOptions => (agent as http.Agent & { options: http.AgentOptions }).options

export const httpAgents: Integration = {
  name: 'http',
  install({ recycler, skip }) {
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
