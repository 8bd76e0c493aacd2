// Tests of Node's own net suite that the conformance runner does not run recycled, each with the
// reason it cannot say anything about recycled sockets. A test does not belong here because it
// fails today: a failure is a difference from `net` to fix (issue 11), and the runner fails
// until it is fixed.
export const EXCLUSIONS = new Map([
])
