/** Installs the Debian packages that are missing (root, apt-get), serialised across processes. */
export function ensureDebianPackages(packages: string[]): void
