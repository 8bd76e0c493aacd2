import { createRequire } from 'node:module'

// The CommonJS build replaces this file with `exports.localRequire = require` (see
// scripts/build-package.mjs): undici is loaded synchronously, and only when fetch is patched.
// @ts-ignore TS1343: import.meta is only emitted into the ESM build
export const localRequire: NodeJS.Require = createRequire(import.meta.url)
