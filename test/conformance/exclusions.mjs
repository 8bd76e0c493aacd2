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
])
