/**
 * A ClusterCache connected to a simulated fleet, in one line: for examples and operators' tests.
 *
 * @module
 */

import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type ClusterCacheOptions, type ObjectKey } from "../mod.ts";
import { SimulatedFleet, type SimulatedFleetOptions } from "./sim/fleet.ts";

/** A connected cache over a simulated fleet; disposing it closes both. */
export interface ConnectedCache extends AsyncDisposable {
  /** The simulated fleet (its API servers take faults, its stores take objects). */
  readonly fleet: SimulatedFleet;
  /** The cache, every workload cluster connected. */
  readonly cache: ClusterCache;
  /** The first workload cluster, `default/workload-1`. */
  readonly cluster: ObjectKey;
}

/**
 * Starts a simulated fleet (one workload cluster unless told otherwise), sets a ClusterCache up
 * over it and waits until every workload cluster is connected.
 *
 * @param options Cache options besides `management` (default user agent: `docs`).
 *
 * @example Reading a workload cluster's Nodes
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectedCache } from "@fleetkit/clustercache/testing";
 *
 * await using docs = await connectedCache();
 * const nodes = await docs.cache.getReader(docs.cluster).list({ apiVersion: "v1", kind: "Node" });
 * assert.ok(nodes.items.length > 0);
 * ```
 */
export async function connectedCache(
  fleetOptions: SimulatedFleetOptions = {},
  options: Partial<ClusterCacheOptions> = {},
): Promise<ConnectedCache> {
  const fleet = await SimulatedFleet.start({ clusters: 1, ...fleetOptions });
  let cache: ClusterCache | undefined;
  try {
    const management = new KubeConfig();
    management.loadFromString(fleet.managementKubeconfig());
    cache = await ClusterCache.setup({ client: { userAgent: "docs" }, ...options, management });
    const expected = fleetOptions.clusters ?? 1;
    const source = cache.getClusterSource("connected-cache", (c) => [c]);
    let connected = cache.clusters().filter((c) => cache!.getConnectionState(c).connected).length;
    if (connected < expected) {
      for await (const _ of source) {
        connected = cache.clusters().filter((c) => cache!.getConnectionState(c).connected).length;
        if (connected >= expected) break;
      }
    }
    source.close();
  } catch (error) {
    await cache?.close();
    await fleet.close();
    throw error;
  }
  const ready = cache;
  return {
    fleet,
    cache: ready,
    cluster: { namespace: "default", name: "workload-1" },
    async [Symbol.asyncDispose]() {
      await ready.close();
      await fleet.close();
    },
  };
}
