import type net from 'node:net'
import tls from 'node:tls'

/**
 * `tls.connect({ ...options, socket })` that always talks to `socket` through its JavaScript
 * methods (Node's JS-stream path), never through its TCP handle. Over a socket that has a handle,
 * TLSWrap takes the handle in C++ and the TLS socket's end() is libuv's shutdown: a FIN at once,
 * below JavaScript, which a recycled socket cannot withhold for the peer's. Over a socket without
 * one, TLS's end() goes through the socket's own end(), which withholds our FIN as the release
 * policy says. A recycled socket gets its handle at connect() when the pool has an fd to lend,
 * synchronously; the handle is hidden from the TLSSocket constructor, the only place that looks.
 */
export function tlsConnectOverSocket(socket: net.Socket, options: tls.ConnectionOptions): tls.TLSSocket {
  const internals = socket as unknown as { _handle: unknown }
  const handle = internals._handle
  internals._handle = null
  try {
    return tls.connect({ ...options, socket })
  } finally {
    internals._handle = handle
  }
}
