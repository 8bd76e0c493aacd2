import { createRequire } from 'node:module'

// The CommonJS build replaces this file with `exports.koffiRequire = require` (see
// scripts/build-package.mjs): koffi must load synchronously and lazily from both builds.
// @ts-ignore TS1343: import.meta is only emitted into the ESM build
export const koffiRequire: NodeJS.Require = createRequire(import.meta.url)
