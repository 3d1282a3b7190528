/**
 * resourceVersion ordering (Kubernetes API concepts, "Resource versions"): the reflector notices
 * a server whose versions went backwards. What list and watch parameters ask for is the simulated
 * API server's business (`testing/sim/list_semantics.ts`).
 *
 * @module
 */

/**
 * Compares two resourceVersions as the orderable decimal integers kube-apiserver guarantees
 * (compare length, then digits). Returns a negative number, zero or a positive number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareResourceVersions } from "./resource_version.ts";
 * assert.ok(compareResourceVersions("99", "100") < 0);
 * ```
 *
 * @param a A resourceVersion.
 * @param b Another resourceVersion.
 * @returns The sign of `a - b`; non-numeric versions compare as strings.
 */
export function compareResourceVersions(a: string, b: string): number {
  const na = a.replace(/^0+(?=\d)/, "");
  const nb = b.replace(/^0+(?=\d)/, "");
  if (/^\d+$/.test(na) && /^\d+$/.test(nb) && na.length !== nb.length) {
    return na.length - nb.length;
  }
  return na < nb ? -1 : na > nb ? 1 : 0;
}
