import type net from 'node:net'
import tls from 'node:tls'

/**
 * `tls.connect({ ...options, socket })` that always talks to `socket` through its JavaScript
 * methods (Node's JS-stream path), never through its TCP handle. Over a socket that has a handle,
 * TLSWrap takes the handle in C++ and the TLS socket's end() is libuv's shutdown: a FIN at once,
 * below JavaScript, which a recycled socket cannot withhold for the peer's. Over a socket without
 * one, TLS's end() goes through the socket's own end(), which withholds our FIN as the release
 * policy says. A recycled socket has its handle from connect() on, as net's does.
 */
export function tlsConnectOverSocket(socket: net.Socket, options: tls.ConnectionOptions): tls.TLSSocket {
  return withHandleHidden(socket, () => tls.connect({ ...options, socket }))
}

/**
 * Runs `make` with `socket._handle` hidden, for code that calls `tls.connect({ socket })` itself
 * (https.Agent#createConnection): the TLSSocket constructor, the only place that looks, then takes
 * the JS-stream path, as in tlsConnectOverSocket.
 */
export function withHandleHidden<T>(socket: net.Socket, make: () => T): T {
  const internals = socket as unknown as { _handle: unknown }
  const handle = internals._handle
  internals._handle = null
  try {
    return make()
  } finally {
    internals._handle = handle
  }
}
