// Tests of Node's own net suite that the conformance runner does not run recycled (in the modes
// named), each with the reason it cannot say anything about recycled sockets. A test does not
// belong here because it fails today: a failure is a difference from `net` to fix (issue 11),
// and the runner fails until it is fixed.
export const EXCLUSIONS = new Map([
  [
    'test-net-persistent-ref-unref.js',
    {
      modes: ['warm'],
      reason:
        "replaces TCPWrap.prototype.ref/unref for every TCP handle in the process and asserts a process-wide count after each call; " +
        "with a warm pool the recycler's own ref() of the pooled handle it lends (idle pool handles are unref'd so that they do not " +
        'hold the process open) is counted too. The cold run, where the handle is new, still checks that ref()/unref() before connect persist.',
    },
  ],
  [
    'test-net-persistent-nodelay.js',
    {
      modes: ['warm'],
      reason:
        'replaces TCPWrap.prototype.setNoDelay for every TCP handle in the process and asserts that one call was made; with a warm ' +
        'pool the lent fd already has TCP_NODELAY from its last tenant, and the recycler makes no setsockopt that would change ' +
        "nothing (it tracks each pooled fd's NODELAY; 'verify' reads it back). The cold run, where the handle is new, still checks " +
        'that setNoDelay() before connect persists.',
    },
  ],
])

// Differences from `net` that are known and not fixed yet, each with its cause. They are run like
// every other test; their failure is reported, not counted, and a listed test that passes (in
// every mode, on a listed Node major) fails the run, so that this list only ever shrinks.
// (Entries look like: ['test-net-x.js', { majors: [20, 22, 24, 26], reason: '...' }].)
export const KNOWN_DIFFERENCES = new Map([])
