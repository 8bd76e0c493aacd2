import { describe, it } from 'vitest'

/**
 * FDRECYCLE_REQUIRE_NAMESPACES=1 (set by CI): suites that need network namespaces fail where they
 * cannot run instead of skipping, since they are the only coverage over a real network path.
 */
export const namespacesRequired = process.env.FDRECYCLE_REQUIRE_NAMESPACES === '1'

/**
 * Call beside `describe.runIf(support.ok)(suite, ...)`: where the suite cannot run, prints why and
 * either skips (default) or, with FDRECYCLE_REQUIRE_NAMESPACES=1, registers one failing test.
 */
export function requireNamespaces(suite: string, support: { ok: boolean; reason?: string }): void {
  if (support.ok) return
  if (!namespacesRequired) {
    console.warn(`[namespaces] ${suite}: skipped: ${support.reason} (FDRECYCLE_REQUIRE_NAMESPACES=1 makes this a failure)`)
    return
  }
  describe(suite, () => {
    it('can run here (FDRECYCLE_REQUIRE_NAMESPACES=1)', () => {
      throw new Error(`${suite} cannot run: ${support.reason}`)
    })
  })
}
