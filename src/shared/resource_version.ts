/**
 * resourceVersion ordering (Kubernetes API concepts, "Resource versions"): the reflector notices
 * a server whose versions went backwards; a moving watch never tells a handler of an older version
 * than it saw. What list and watch parameters ask for is the simulated API server's business
 * (`testing/sim/list_semantics.ts`). Loaded by both sides.
 *
 * @module
 */

const DECIMAL = /^\d+$/;

/**
 * Compares two resourceVersions as the orderable decimal integers kube-apiserver's etcd storage
 * gives (compare length, then digits), as client-go's `CompareResourceVersion` does. Anything else
 * (an aggregated API server's opaque versions) is not comparable: `undefined`, and callers fail
 * open, as client-go does, rather than guess an order from strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareResourceVersions } from "./resource_version.ts";
 * assert.ok(compareResourceVersions("99", "100")! < 0);
 * assert.equal(compareResourceVersions("b7f3", "a9c1"), undefined); // opaque
 * ```
 *
 * @param a A resourceVersion.
 * @param b Another resourceVersion.
 * @returns The sign of `a - b`, or `undefined` when either is not a decimal integer.
 */
export function compareResourceVersions(a: string, b: string): number | undefined {
  if (!DECIMAL.test(a) || !DECIMAL.test(b)) return undefined;
  const na = a.replace(/^0+(?=\d)/, "");
  const nb = b.replace(/^0+(?=\d)/, "");
  if (na.length !== nb.length) return na.length - nb.length;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Whether `a` is known to be older than `b` (`false` when they cannot be compared). */
export function olderThan(a: string, b: string): boolean {
  return (compareResourceVersions(a, b) ?? 0) < 0;
}
