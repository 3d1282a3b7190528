/**
 * Child process of the restart benchmark: an operator starting over a fleet that exists already,
 * reading three kinds of every cluster at once (what a controller's first reconciles do), with or
 * without the fleet's list budget. Prints JSON: peak RSS above the start, time until every kind of
 * every cluster has been read from a synced cache, and how many made it.
 */
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type KindRef } from "../../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clusters: { type: "string" },
    dir: { type: "string" },
    budget: { type: "string" },
    deadline: { type: "string" },
  },
});
const n = Number(values.clusters);
const kinds: KindRef[] = [
  { apiVersion: "v1", kind: "Node" },
  { apiVersion: "v1", kind: "ConfigMap" },
  { apiVersion: "v1", kind: "Pod" },
];
const management = new KubeConfig();
management.loadFromString(await Deno.readTextFile(`${values.dir}/management.kubeconfig`));
const before = Deno.memoryUsage().rss;
let peak = before;
const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 50);
const started = performance.now();
const cache = await ClusterCache.setup({
  management,
  client: { userAgent: "bench-restart", timeoutMs: 60_000 },
  workers: { mode: "pooled" },
  ...(values.budget === "off" ? { listBudget: false as const } : {}),
});
const deadline = started + Number(values.deadline ?? "600000");
const keys = Array.from(
  { length: n },
  (_, i) => ({ namespace: "default", name: `workload-${i + 1}` }),
);
const done = new Set<string>();
while (done.size < n * kinds.length && performance.now() < deadline) {
  await Promise.all(keys.flatMap((key) =>
    kinds.map(async (kind) => {
      const id = `${key.name} ${kind.kind}`;
      if (done.has(id) || !cache.getConnectionState(key).connected) return;
      try {
        await cache.getReader(key).list(kind, { limit: 1 });
        done.add(id);
      } catch { /* not synced in time, or disconnected meanwhile: read again */ }
    })
  ));
  if (done.size < n * kinds.length) await new Promise((r) => setTimeout(r, 200));
}
const syncedS = (performance.now() - started) / 1000;
clearInterval(sampler);
peak = Math.max(peak, Deno.memoryUsage().rss);
console.log(JSON.stringify({ peakMb: (peak - before) / 1e6, syncedS, synced: done.size }));
await cache.close();
Deno.exit(0);
