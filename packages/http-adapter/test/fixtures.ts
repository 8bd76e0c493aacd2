// The files nginx serves in the http tests (test/setup/nginx.ts writes them), also served by the
// Node upstreams that stand beside nginx behind the reverse proxy.
import { createHash } from 'node:crypto'

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** Deterministic bytes without repeats an off-by-some-bytes bug could hide in (xorshift32). */
export function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out.writeUInt32LE(x, i)
  }
  return out
}

export interface ServedFiles {
  hello: string
  small: string
  /** 8 MiB, served with Content-Length */
  large: Buffer
  /** the text file as stored (www/text.txt) */
  text: string
  /** what /chunked/text.txt answers: the text with every MARK rewritten (nginx sub_filter), chunked */
  chunked: string
}

let files: ServedFiles | undefined

export function servedFiles(): ServedFiles {
  if (files) return files
  const lines: string[] = []
  // ~70 KiB: nginx's sub_filter is slow on many matches (about 0.5 s per MiB here)
  for (let i = 0; i < 3000; i++) lines.push(`line ${String(i).padStart(6, '0')} MARK ${'x'.repeat(i % 17)}\n`)
  const text = lines.join('')
  files = {
    hello: 'hello from nginx\n',
    small: 'small file from nginx\n',
    large: pseudoRandom(8 << 20, 0x5eed),
    text,
    chunked: text.replaceAll('MARK', 'mark'),
  }
  return files
}
