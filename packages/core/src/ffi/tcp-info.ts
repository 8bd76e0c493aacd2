/** tcpi_state values (include/net/tcp_states.h). */
export const TcpState = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
} as const

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(TcpState).map(([k, v]) => [v, k]))

export function tcpStateName(state: number): string {
  return NAMES[state] ?? `UNKNOWN(${state})`
}

/** The peer's FIN has arrived in these states: the seed's rule ("reuse only after EOF") holds. */
export function peerHasClosed(state: number): boolean {
  return state === TcpState.CLOSE_WAIT || state === TcpState.LAST_ACK || state === TcpState.CLOSING ||
    state === TcpState.TIME_WAIT || state === TcpState.CLOSE
}

/** Our FIN is out in these states. */
export function weHaveClosed(state: number): boolean {
  return state === TcpState.FIN_WAIT1 || state === TcpState.FIN_WAIT2 || state === TcpState.CLOSING ||
    state === TcpState.LAST_ACK || state === TcpState.TIME_WAIT
}
