// @fdrecycle/http-adapter is required (its CommonJS build), never imported, and so is node:http:
// on Node 22 and later, an ESM `import` of node:http reads every export of the module, among them
// the `WebSocket` getter, which loads Node's bundled undici, which sets its own global dispatcher.
// Imported here, that would happen before the fetch integration looks for a dispatcher the app
// set, and Node's own default would pass for one.
import { localRequire } from '../local-require.js'

export function httpAdapter(): typeof import('@fdrecycle/http-adapter') {
  return localRequire('@fdrecycle/http-adapter') as typeof import('@fdrecycle/http-adapter')
}
