/**
 * Child process of the memory and cold-start benchmarks: connects `--clusters N` clusters of a running
 * simulated fleet, ours or naive, each with one synced Node informer, and prints what it measured as
 * JSON. A process per measurement keeps every RSS figure clean.
 */
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache } from "../../mod.ts";
import { naiveInformer } from "./naive.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string" },
    clusters: { type: "string" },
    dir: { type: "string" },
    settle: { type: "string" },
    budget: { type: "string" },
    workers: { type: "string" },
  },
});
const n = Number(values.clusters);
const dir = values.dir!;
const budgetMs = Number(values.budget ?? "600000");
const settle = () => new Promise((r) => setTimeout(r, Number(values.settle ?? "3000")));

if (values.mode === "ours") {
  const management = new KubeConfig();
  management.loadFromString(await Deno.readTextFile(`${dir}/management.kubeconfig`));
  const before = Deno.memoryUsage().rss;
  const started = performance.now();
  const cache = await ClusterCache.setup({
    management,
    client: { userAgent: "bench-memory" },
    workers: { mode: values.workers === "pooled" ? "pooled" : "dedicated" },
  });
  const keys = Array.from(
    { length: n },
    (_, i) => ({ namespace: "default", name: `workload-${i + 1}` }),
  );
  // Each cluster is read as soon as it is connected, as a controller reconciles a cluster when it
  // connects; on a slow machine a cluster may drop and come back meanwhile: it is read again until
  // it has answered once, within a budget; what did not make it is reported, not a crash.
  const deadline = started + budgetMs;
  const synced = new Set<number>();
  const reading = new Set<number>();
  let connectedS: number | undefined;
  while (synced.size < n && performance.now() < deadline) {
    let connectedNow = 0;
    keys.forEach((k, i) => {
      if (!cache.getConnectionState(k).connected) return;
      connectedNow++;
      if (synced.has(i) || reading.has(i)) return;
      reading.add(i);
      cache.getReader(k).list({ apiVersion: "v1", kind: "Node" }).then(
        () => synced.add(i),
        () => {/* disconnected meanwhile: it reconnects, we read again */},
      ).finally(() => reading.delete(i));
    });
    if (connectedNow === n) connectedS ??= (performance.now() - started) / 1000;
    if (synced.size < n) await new Promise((r) => setTimeout(r, 20));
  }
  const syncedS = (performance.now() - started) / 1000;
  await settle();
  const after = Deno.memoryUsage().rss;
  const connected = keys.filter((k) => cache.getConnectionState(k).connected).length;
  console.log(
    JSON.stringify({
      before,
      after,
      connectedS: connectedS ?? syncedS,
      syncedS,
      connected,
      synced: synced.size,
    }),
  );
  await cache.close();
} else {
  const texts = await Promise.all(
    Array.from({ length: n }, (_, i) => Deno.readTextFile(`${dir}/workload-${i + 1}.kubeconfig`)),
  );
  new KubeConfig(); // client-node loaded before the baseline reading, as it is for ours
  const before = Deno.memoryUsage().rss;
  const started = performance.now();
  const informers = [];
  for (let i = 0; i < n; i += 50) {
    informers.push(
      ...await Promise.all(
        texts.slice(i, i + 50).map((t, j) => naiveInformer(t, `workload-${i + j + 1}`, "nodes")),
      ),
    );
  }
  const syncedS = (performance.now() - started) / 1000;
  await settle();
  const after = Deno.memoryUsage().rss;
  console.log(
    JSON.stringify({ before, after, connectedS: syncedS, syncedS, connected: n, synced: n }),
  );
  for (const i of informers) await i.informer.stop();
}
Deno.exit(0);
