/**
 * A simulated fleet plus a ClusterCache over it, with intervals shortened for tests.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type ClusterCacheOptions, type ObjectKey } from "../../mod.ts";
import { SimulatedFleet, type SimulatedFleetOptions } from "../../testing/mod.ts";

/**
 * `CLUSTERCACHE_TEST_WORKERS=pooled` runs the behaviour tests with pooled workers, two clusters to a
 * worker, so every test that names a worker also runs with a neighbour in it.
 */
export const POOLED = Deno.env.get("CLUSTERCACHE_TEST_WORKERS") === "pooled";

export const FAST: Omit<ClusterCacheOptions, "management"> = {
  client: { userAgent: "clustercache-tests", timeoutMs: 2_000 },
  healthProbe: { intervalMs: 200, timeoutMs: 500, failureThreshold: 3 },
  connectionCreationRetryIntervalMs: 500,
  initialSyncTimeoutMs: 5_000,
  watchIdleTimeoutMs: 3_000,
  defaultRequeueAfterMs: 1_000,
  podIdentity: null,
  inClusterConfig: null,
  ...(POOLED ? { workers: { mode: "pooled", clustersPerWorker: 2 } } : {}),
};

export function key(name: string, namespace = "default"): ObjectKey {
  return { namespace, name };
}

export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs}ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Fixture extends AsyncDisposable {
  fleet: SimulatedFleet;
  cache: ClusterCache;
  management: KubeConfig;
  /** Waits until the cluster is connected. */
  connected(name: string, timeoutMs?: number): Promise<void>;
}

export async function fixture(
  fleetOptions: SimulatedFleetOptions = {},
  cacheOptions: Partial<ClusterCacheOptions> = {},
): Promise<Fixture> {
  const fleet = await SimulatedFleet.start(fleetOptions);
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  let cache: ClusterCache;
  try {
    cache = await ClusterCache.setup({ ...FAST, ...cacheOptions, management });
  } catch (error) {
    await fleet.close();
    throw error;
  }
  return {
    fleet,
    cache,
    management,
    connected: (name, timeoutMs) =>
      eventually(
        () => cache.getConnectionState(key(name)).connected,
        `${name} to connect`,
        timeoutMs,
      ),
    async [Symbol.asyncDispose]() {
      await cache.close();
      await fleet.close();
    },
  };
}
