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

/** States where tcp_disconnect() (AF_UNSPEC) sends an RST (tcp_need_reset in net/ipv4/tcp.c). */
export function disconnectSendsReset(state: number): boolean {
  return state === TcpState.ESTABLISHED || state === TcpState.CLOSE_WAIT || state === TcpState.FIN_WAIT1 ||
    state === TcpState.FIN_WAIT2 || state === TcpState.SYN_RECV
}
