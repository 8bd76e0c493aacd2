// vitest globalSetup of the http project: Debian's nginx on loopback with a throwaway config.
// Every server closes after one response (keepalive_requests 1, `Connection: close`) except
// `keepalive`; each test purpose has its own port, so that TIME_WAIT counts stay attributable.
import type { TestProject } from 'vitest/node'
import { servedFiles, sha256 } from '../../packages/http-adapter/test/fixtures.js'
import { startNginx } from '../../scripts/nginx.mjs'
import { ensureDebianPackages } from '../../scripts/system-deps.mjs'

export interface NginxFile {
  path: string
  size: number
  sha256: string
}

export interface NginxContext {
  host: string
  version: string
  pid: number
  /** direct/undici/proxy/plain/abort: keepalive_requests 1; keepalive: 100 requests, 60 s idle */
  ports: Record<'direct' | 'undici' | 'proxy' | 'plain' | 'abort' | 'keepalive', number>
  /** a `return 200` body */
  hello: NginxFile
  small: NginxFile
  /** a static file of 8 MiB (Content-Length) */
  large: NginxFile
  /** a text file served through sub_filter: chunked, every MARK rewritten to mark */
  chunked: NginxFile
}

declare module 'vitest' {
  export interface ProvidedContext {
    nginx: NginxContext
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureDebianPackages(['nginx'])
  const files = servedFiles()
  const closeAfterOne = { keepaliveRequests: 1 }
  const nginx = await startNginx({
    servers: {
      direct: closeAfterOne,
      undici: closeAfterOne,
      proxy: closeAfterOne,
      plain: closeAfterOne,
      abort: closeAfterOne,
      keepalive: { keepaliveRequests: 100, keepaliveTimeout: '60s' },
    },
    files: { 'small.txt': files.small, 'large.bin': files.large, 'text.txt': files.text },
  })
  const file = (path: string, body: Buffer | string): NginxFile => ({ path, size: Buffer.byteLength(body), sha256: sha256(body) })
  project.provide('nginx', {
    host: nginx.host,
    version: nginx.version,
    pid: nginx.pid,
    ports: nginx.ports as NginxContext['ports'],
    hello: file('/hello', files.hello),
    small: file('/small.txt', files.small),
    large: file('/large.bin', files.large),
    chunked: file('/chunked/text.txt', files.chunked),
  })
  return async () => {
    await nginx.stop()
  }
}
