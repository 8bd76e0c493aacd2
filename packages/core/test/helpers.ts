import { once } from 'node:events'
import type net from 'node:net'

export interface Exchange {
  data: string
  localPort: number | undefined
  fd: number
  error: Error | null
  hadError: boolean
}

/** Connects, optionally writes, collects everything until 'close'. */
export function exchange(socket: net.Socket, write?: string, endAfterWrite = false): Promise<Exchange> {
  return new Promise((resolve) => {
    let data = ''
    let localPort: number | undefined
    let fd = -1
    let error: Error | null = null
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      data += d
    })
    socket.on('connect', () => {
      localPort = socket.localPort
      fd = (socket as unknown as { _handle: { fd: number } })._handle.fd
      if (write !== undefined) {
        if (endAfterWrite) socket.end(write)
        else socket.write(write)
      }
    })
    socket.on('error', (err) => {
      error = err
    })
    socket.on('close', (hadError: boolean) => resolve({ data, localPort, fd, error, hadError }))
  })
}

/**
 * Lets the release protocol run: it settles on the tick after 'close', and a released fd cools for
 * one poll phase before it can be lent again (three check phases cover both).
 */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
}

export async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export { once }
