/**
 * Recovery: time from a dead API server coming back to the cluster being connected again and its
 * cache re-synced (a cached list answers), with the reconnect settings used in tests.
 */
import { ClusterCache } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";
import { percentile, waitFor } from "../lib/stats.ts";

export async function recovery(quick: boolean): Promise<Figure[]> {
  const rounds = quick ? 2 : 5;
  await using sim = await startSim(3);
  await sim.admin("clusters/workload-1/flood?count=500&kind=pods&namespace=app", {
    method: "POST",
  });
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-recovery" },
    healthProbe: { intervalMs: 500, timeoutMs: 500, failureThreshold: 2 },
    connectionCreationRetryIntervalMs: 1_000,
  });
  const key = { namespace: "default", name: "workload-1" };
  const POD = { apiVersion: "v1", kind: "Pod" };
  await waitFor(() => cache.getConnectionState(key).connected, "connect", 30_000);
  await cache.getReader(key).list(POD, { namespace: "app" });
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await sim.admin("clusters/workload-1/stop", { method: "POST" });
    await waitFor(() => !cache.getConnectionState(key).connected, "disconnect", 30_000);
    const started = performance.now();
    await sim.admin("clusters/workload-1/start", { method: "POST" });
    await waitFor(() => cache.getConnectionState(key).connected, "reconnect", 30_000);
    const pods = await cache.getReader(key).list(POD, { namespace: "app" });
    if (pods.items.length !== 500) {
      throw new Error(`re-synced cache holds ${pods.items.length} pods, not 500`);
    }
    times.push((performance.now() - started) / 1000);
  }
  return [
    figure("recovery_s", percentile(times, 50), "s", {
      note:
        `median of ${rounds}: API server back to connected and 500 Pods re-synced; retry interval 1 s, probe 0.5 s x 2`,
    }),
  ];
}
