import net from 'node:net'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { observeWrites } from '../../src/index.js'

describe('observeWrites', () => {
  it('sees every write, also after net.Socket#connect() has put the prototype write back, each observer once', async () => {
    const server = net.createServer((s) => s.resume())
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as net.AddressInfo).port
    const socket = new net.Socket()
    const seen: unknown[] = []
    const alsoSeen: unknown[] = []
    observeWrites(socket, (chunk) => seen.push(chunk))
    observeWrites(socket, (chunk) => alsoSeen.push(chunk))
    socket.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('one')
    socket.write('two')
    socket.end()
    await once(socket, 'close')
    server.close()
    // each observer sees each write once (no observer installed twice over by the 'connect' check)
    expect(seen).toEqual(['one', 'two'])
    expect(alsoSeen).toEqual(['one', 'two'])
  })
})
