/**
 * Events: watch events per second delivered to a main-thread handler, and their latency (creation in
 * the API server to handler) while one cluster floods; ours vs a client-node informer on the main
 * thread.
 */
import { ClusterCache } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { naiveInformer } from "../lib/naive.ts";
import { startSim } from "../../testing/sim_process.ts";
import { percentile, waitFor } from "../lib/stats.ts";

interface Run {
  perSecond: number;
  p99: number;
  p50: number;
}

function summarise(arrivals: number[], latencies: number[]): Run {
  const span = (arrivals[arrivals.length - 1]! - arrivals[0]!) / 1000;
  return {
    perSecond: arrivals.length / Math.max(span, 1e-3),
    p99: percentile(latencies, 99),
    p50: percentile(latencies, 50),
  };
}

export async function events(
  quick: boolean,
  withNaive = true,
  run: { workers?: "dedicated" | "pooled"; prefix?: string } = {},
): Promise<Figure[]> {
  const prefix = run.prefix ?? "";
  const count = quick ? 20_000 : 100_000;
  const flood = `clusters/workload-1/flood?count=${count}&bytes=256&namespace=flood`;

  let ours: Run;
  {
    await using sim = await startSim(1);
    await sim.admin("clusters/workload-1/flood?count=1&namespace=flood", { method: "POST" });
    await using cache = await ClusterCache.setup({
      management: sim.management,
      client: { userAgent: "bench-events" },
      workers: { mode: run.workers ?? "dedicated" },
    });
    const key = { namespace: "default", name: "workload-1" };
    await waitFor(() => cache.getConnectionState(key).connected, "connect", 30_000);
    const arrivals: number[] = [];
    const latencies: number[] = [];
    await (await cache.watch(key, {
      name: "flood",
      kind: { apiVersion: "v1", kind: "ConfigMap" },
      predicates: [{ labelSelector: "flood=true" }],
      handler: (e) => {
        if (e.type !== "add") return;
        const now = Date.now();
        arrivals.push(now);
        latencies.push(now - Number((e.object.data as { t: string }).t));
      },
    })).synced;
    arrivals.length = 0;
    latencies.length = 0;
    await sim.admin(flood, { method: "POST" });
    await waitFor(() => arrivals.length >= count, "every event", 120_000);
    ours = summarise(arrivals, latencies);
  }

  let naive: Run | undefined;
  if (withNaive) {
    await using sim = await startSim(1);
    await sim.admin("clusters/workload-1/flood?count=1&namespace=flood", { method: "POST" });
    const c = await naiveInformer(
      await sim.kubeconfig("workload-1"),
      "workload-1",
      "configmaps",
      "flood",
    );
    const arrivals: number[] = [];
    const latencies: number[] = [];
    c.informer.on("add", (o) => {
      const now = Date.now();
      arrivals.push(now);
      latencies.push(now - Number((o as unknown as { data: { t: string } }).data.t));
    });
    await sim.admin(flood, { method: "POST" });
    await waitFor(() => arrivals.length >= count, "every event (naive)", 120_000);
    naive = summarise(arrivals, latencies);
    await c.informer.stop();
  }
  const note =
    `${count} ConfigMaps created as fast as the simulator can in one cluster; latency from creation to handler`;
  return [
    figure(`${prefix}events_per_s`, ours.perSecond, "events/s", {
      ...(naive ? { baseline: naive.perSecond } : {}),
      goal: ">= 50000",
      note,
    }),
    figure(`${prefix}event_latency_p99_ms`, ours.p99, "ms", {
      ...(naive ? { baseline: naive.p99 } : {}),
      goal: "< 50",
      note: `p50 ${ours.p50.toFixed(1)} ms`,
    }),
  ];
}
