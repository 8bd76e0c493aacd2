import type { TcpHandle } from './node.js'

/**
 * TCP#connect / #connect6 replaced on a pooled handle (own properties, the prototype untouched):
 * libuv either accepts a connect (returns 0) and calls back later, or fails at once. Knowing
 * which tells a destroy-while-connecting apart from a failed connect.
 */
export type ConnectIssued = (handle: TcpHandle, ret: number) => void

let protoConnect: TcpHandle['connect'] | undefined
let protoConnect6: TcpHandle['connect6'] | undefined
let issued: ConnectIssued | undefined

/** Once per process, from the support probe: TCP.prototype's own connect functions and the observer. */
export function installConnectHooks(connect: TcpHandle['connect'], connect6: TcpHandle['connect6'], onIssued: ConnectIssued): void {
  protoConnect = connect
  protoConnect6 = connect6
  issued = onIssued
}

export function hookConnect(handle: TcpHandle): void {
  handle.connect = hookedConnect
  handle.connect6 = hookedConnect6
}

function hookedConnect(this: TcpHandle, req: object, address: string, port: number): number {
  const ret = protoConnect!.call(this, req, address, port)
  issued!(this, ret)
  return ret
}

function hookedConnect6(this: TcpHandle, req: object, address: string, port: number): number {
  const ret = protoConnect6!.call(this, req, address, port)
  issued!(this, ret)
  return ret
}
