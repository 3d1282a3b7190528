/**
 * Convergence: a cache holds exactly what a fresh list from the server holds (same keys, UIDs and
 * resourceVersions: nothing lost, stale or duplicated).
 */
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/shared/kube_object.ts";
import type { SimulatedApiServer } from "../../testing/sim/api_server.ts";

function fingerprint(objects: Iterable<KubeObject>): string[] {
  return [...objects].map((o) =>
    `${
      o.metadata?.namespace ?? ""
    }/${o.metadata?.name} uid=${o.metadata?.uid} rv=${o.metadata?.resourceVersion}`
  ).sort();
}

/** The server's truth for a kind. */
export function truth(server: SimulatedApiServer, group: string, plural: string): string[] {
  const type = server.types.find((t) => t.group === group && t.plural === plural)!;
  return fingerprint(server.store.list(type));
}

/** Whether cached objects equal the server's. */
export function converged(
  cached: Iterable<KubeObject>,
  server: SimulatedApiServer,
  group: string,
  plural: string,
): boolean {
  const a = fingerprint(cached);
  const b = truth(server, group, plural);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Asserts equality, showing the difference. */
export function assertConverged(
  cached: Iterable<KubeObject>,
  server: SimulatedApiServer,
  group: string,
  plural: string,
): void {
  assert.deepEqual(fingerprint(cached), truth(server, group, plural));
}
