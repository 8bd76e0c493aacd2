/**
 * The life of one pooled fd (one libuv TCP handle), drawn in docs/lifecycle.md.
 *
 * Idle states (in the pool):
 * - `fresh`        a handle with no kernel socket yet; the kernel makes one at its first connect,
 *                  exactly as for a plain net.Socket (so EMFILE surfaces as the same error).
 * - `idle`         an unconnected socket: dissolved with AF_UNSPEC, no pending error.
 * - `parked`       both FINs exchanged (LAST_ACK, or CLOSE after it): dissolved lazily at the next
 *                  checkout, so that AF_UNSPEC does not race the peer's last ACK and draw an RST.
 * In use:
 * - `connecting`   connect() in flight for a tenant.
 * - `open`         established; neither side has closed.
 * - `peer-closed`  the peer's EOF has arrived (CLOSE_WAIT); our FIN not yet sent.
 * - `awaiting-eof` the tenant is done writing (or gone); our FIN is withheld up to finDelayMs so
 *                  that the peer closes first and the TIME_WAIT stays on its side.
 * - `fin-sent`     our FIN is out, the peer's EOF not yet in (FIN_WAIT1/2).
 * - `finished`     both FINs are out; released to `parked` once the tenant lets go.
 * Terminal:
 * - `closed`       close(2) done; the fd number belongs to the kernel again.
 */
export type FdState =
  | 'fresh'
  | 'idle'
  | 'parked'
  | 'connecting'
  | 'open'
  | 'peer-closed'
  | 'awaiting-eof'
  | 'fin-sent'
  | 'finished'
  | 'closed'

export const TRANSITIONS: Readonly<Record<FdState, readonly FdState[]>> = Object.freeze({
  fresh: ['connecting', 'closed'],
  idle: ['connecting', 'closed'],
  // A parked fd is dissolved (-> idle) by validation on borrow before any checkout.
  parked: ['idle', 'closed'],
  // A connect that fails or is aborted leaves the fd idle (dissolved) or, if the kernel never
  // made a socket for it, fresh.
  connecting: ['open', 'idle', 'fresh', 'closed'],
  open: ['peer-closed', 'awaiting-eof', 'fin-sent', 'finished', 'idle', 'closed'],
  'peer-closed': ['finished', 'idle', 'closed'],
  'awaiting-eof': ['fin-sent', 'finished', 'idle', 'closed'],
  'fin-sent': ['finished', 'idle', 'closed'],
  finished: ['parked', 'idle', 'closed'],
  closed: [],
})

const STATES = Object.keys(TRANSITIONS) as FdState[]
const BIT = Object.fromEntries(STATES.map((state, i) => [state, 1 << i])) as Record<FdState, number>
/** TRANSITIONS as bit masks: checked on every state change, several per connection. */
const ALLOWED = Object.fromEntries(
  STATES.map((from) => [from, TRANSITIONS[from].reduce((mask, to) => mask | BIT[to], 0)]),
) as Record<FdState, number>

export function canTransition(from: FdState, to: FdState): boolean {
  return (ALLOWED[from] & BIT[to]) !== 0
}
