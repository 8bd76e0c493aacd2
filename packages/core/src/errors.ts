const kFdRecycleError = Symbol.for('fdrecycle.error')

/** Every code this library throws or emits; the table with causes and fixes is docs/errors.md. */
export const ErrorCodes = {
  INVALID_OPTION: 'ERR_FDRECYCLE_INVALID_OPTION',
  INVALID_ARGUMENT: 'ERR_FDRECYCLE_INVALID_ARGUMENT',
  CLOSED: 'ERR_FDRECYCLE_CLOSED',
  ACQUIRE_TIMEOUT: 'ERR_FDRECYCLE_ACQUIRE_TIMEOUT',
  UNSUPPORTED: 'ERR_FDRECYCLE_UNSUPPORTED',
  INTERNAL: 'ERR_FDRECYCLE_INTERNAL',
} as const
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/**
 * Base class of fdrecycle's errors: a stable `code`, a default message and `cause`.
 * `instanceof` works across two installed copies of the package (the brand is a Symbol.for).
 */
export class FdRecycleError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FdRecycleError'
    this.code = code
  }

  get [kFdRecycleError](): true {
    return true
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kFdRecycleError] === true
  }
}

export class InvalidOptionError extends FdRecycleError {
  readonly option: string
  constructor(option: string, message: string) {
    super(ErrorCodes.INVALID_OPTION, `Invalid option ${option}: ${message}`)
    this.name = 'InvalidOptionError'
    this.option = option
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return FdRecycleError[Symbol.hasInstance](value) && (value as FdRecycleError).code === ErrorCodes.INVALID_OPTION
  }
}

export class InvalidArgumentError extends FdRecycleError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message)
    this.name = 'InvalidArgumentError'
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return FdRecycleError[Symbol.hasInstance](value) && (value as FdRecycleError).code === ErrorCodes.INVALID_ARGUMENT
  }
}

export class RecyclerClosedError extends FdRecycleError {
  constructor(message = 'the SocketRecycler is closed; create a new one or stop using this one after close()') {
    super(ErrorCodes.CLOSED, message)
    this.name = 'RecyclerClosedError'
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return FdRecycleError[Symbol.hasInstance](value) && (value as FdRecycleError).code === ErrorCodes.CLOSED
  }
}

export class AcquireTimeoutError extends FdRecycleError {
  constructor(timeoutMs: number, maxSockets: number) {
    super(
      ErrorCodes.ACQUIRE_TIMEOUT,
      `no socket became free within acquireTimeoutMillis (${timeoutMs} ms) with maxSockets (${maxSockets}) in use; ` +
        'raise maxSockets or acquireTimeoutMillis, or release sockets sooner',
    )
    this.name = 'AcquireTimeoutError'
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return FdRecycleError[Symbol.hasInstance](value) && (value as FdRecycleError).code === ErrorCodes.ACQUIRE_TIMEOUT
  }
}

export class UnsupportedError extends FdRecycleError {
  constructor(reason: string, cause?: unknown) {
    super(ErrorCodes.UNSUPPORTED, `socket recycling is not supported in this process: ${reason}`, { cause })
    this.name = 'UnsupportedError'
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return FdRecycleError[Symbol.hasInstance](value) && (value as FdRecycleError).code === ErrorCodes.UNSUPPORTED
  }
}

export function isFdRecycleError(value: unknown): value is FdRecycleError {
  return FdRecycleError[Symbol.hasInstance](value)
}
