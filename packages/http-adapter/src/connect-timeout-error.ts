// undici brands its errors with these Symbol.for keys and checks them in Symbol.hasInstance, so
// `err instanceof undici.errors.ConnectTimeoutError` holds for this error without importing undici
// (an optional peer dependency).
const kUndiciError = Symbol.for('undici.error.UND_ERR')
const kConnectTimeoutError = Symbol.for('undici.error.UND_ERR_CONNECT_TIMEOUT')

/**
 * The connect timeout of `undiciConnector`, shaped as undici's own `ConnectTimeoutError`
 * (`code: 'UND_ERR_CONNECT_TIMEOUT'`, same message) so that undici's retry logic and user code
 * that checks for it treat a recycled connection exactly as a plain one.
 */
export class ConnectTimeoutError extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT'

  constructor(message = 'Connect Timeout Error') {
    super(message)
    this.name = 'ConnectTimeoutError'
  }

  get [kUndiciError](): true {
    return true
  }

  get [kConnectTimeoutError](): true {
    return true
  }
}
