import type { Duplex } from 'node:stream'
import { observeWrites } from '@fdrecycle/core'

/** QUIT as a RESP array: every Redis (and RESP3 connection) reads it, also in subscriber mode and inside MULTI. */
const QUIT = Buffer.from('*1\r\n$4\r\nQUIT\r\n')
/** Redis's reply to QUIT (RESP2 and RESP3 alike), the last bytes it sends before it closes. */
const OK = Buffer.from('+OK\r\n')
const EMPTY = Buffer.alloc(0)

/** What ioredis writes for `quit()` (a string per command; `call('QUIT')` writes it in capitals). */
const IOREDIS_QUIT = '*1\r\n$4\r\nquit\r\n'

/**
 * Watches a stream's writes for the client's own QUIT (`quit()`): once Redis has a QUIT, it
 * closes after answering it, and a second QUIT from disconnect() would reach a closed socket (an
 * RST back, and over TLS an EPIPE on the close_notify that follows). Returns whether one was seen.
 */
export function watchForQuit(stream: Duplex): () => boolean {
  let seen = false
  observeWrites(stream, (chunk) => {
    if (!seen && typeof chunk === 'string' && chunk.length === IOREDIS_QUIT.length && chunk.toLowerCase() === IOREDIS_QUIT) seen = true
  })
  return () => seen
}

/**
 * Ends a Redis connection the way `quit()` does, for callers that asked for `disconnect()`: sends
 * QUIT so that Redis closes first (the side that closes first keeps the TIME_WAIT, and the recycler
 * reuses an fd only after the peer's FIN), and keeps Redis's `+OK` from the client's parser, which
 * expects no reply for a command it never sent ("Command queue state error").
 *
 * Redis closes right after the QUIT reply (CLIENT_CLOSE_AFTER_REPLY), so `+OK\r\n` is the last
 * thing on the stream: the last five bytes are held back until the next chunk or EOF, and dropped
 * at EOF when they are exactly that reply. Replies to commands still in flight arrive before it,
 * unchanged.
 */
export function sayQuit(stream: Duplex): void {
  hideQuitReply(stream)
  stream.write(QUIT)
}

function hideQuitReply(stream: Duplex): void {
  // Both net.Socket (onStreamRead) and TLSSocket deliver reads and EOF through push(): wrapping
  // it on this instance sees the bytes before 'data' listeners do.
  const push = stream.push
  let held = EMPTY
  stream.push = function pushWithoutQuitReply(this: Duplex, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || chunk === undefined) {
      const tail = held
      held = EMPTY
      if (tail.length > 0 && !tail.equals(OK)) push.call(this, tail)
      return push.call(this, chunk)
    }
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Buffer)
    const all = held.length > 0 ? Buffer.concat([held, bytes]) : bytes
    const cut = Math.max(0, all.length - OK.length)
    held = Buffer.from(all.subarray(cut))
    return cut > 0 ? push.call(this, all.subarray(0, cut)) : true
  }
}
