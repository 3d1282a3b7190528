/**
 * Isolation: p50/p99 latency of cached reads on healthy clusters, quiet and while one other cluster
 * (a) relists a huge kind, (b) floods events, (c) hangs; ours (a worker per cluster) vs the naive
 * design (client-node informers on the main thread). Reads are issued open-loop on a schedule, so a
 * blocked event loop shows up as latency.
 */
import { ClusterCache, type ObjectKey } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { healthyReads } from "../lib/healthy_reads.ts";
import { naiveInformer } from "../lib/naive.ts";
import { type BenchFleet, startBenchFleet } from "../lib/bench_fleet.ts";
import { openLoop, openLoopCovering, percentile, sleep, waitFor } from "../lib/stats.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

export interface IsolationResult {
  figures: Figure[];
  chart: { label: string; bars: { name: string; value: number }[] }[];
}

interface Phases {
  quiet: number[];
  relist: number[];
  flood: number[];
  hang: number[];
}

interface Setup {
  healthy: number;
  bulk: number;
  floodCount: number;
  phaseMs: number;
  rate: number;
}

async function seed(sim: BenchFleet, setup: Setup): Promise<void> {
  for (let i = 2; i <= setup.healthy + 1; i++) {
    await sim.flood(`workload-${i}`, { count: 200, bytes: 2000, namespace: "app" });
  }
  // The victim's bulk kind, created in chunks so the simulator stays responsive.
  for (let done = 0; done < setup.bulk; done += 10_000) {
    const count = Math.min(10_000, setup.bulk - done);
    await sim.flood("workload-1", { count, bytes: 2000, namespace: "bulk" });
  }
}

function healthyClusters(setup: Setup): string[] {
  return Array.from({ length: setup.healthy }, (_, i) => `workload-${i + 2}`);
}

async function ours(setup: Setup, log: (m: string) => void, real: boolean): Promise<Phases> {
  await using sim = await startBenchFleet(real, setup.healthy + 1);
  await seed(sim, setup);
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-isolation", qps: 1000, burst: 1000, timeoutMs: 300_000 },
    healthProbe: { intervalMs: 2_000, timeoutMs: 2_000, failureThreshold: 1_000 },
  });
  const key = (name: string): ObjectKey => ({ namespace: "default", name });
  const clusters = healthyClusters(setup);
  await waitFor(
    () => clusters.every((c) => cache.getConnectionState(key(c)).connected),
    "connects",
    60_000,
  );
  const read = await healthyReads(cache, clusters, key);
  await openLoop(setup.rate, 500, read); // warm-up
  const phases: Phases = { quiet: [], relist: [], flood: [], hang: [] };
  phases.quiet = await openLoop(setup.rate, setup.phaseMs, read);
  log("ours: quiet done; relisting the victim's bulk kind");
  const victim = cache.getReader(key("workload-1"));
  const started = performance.now();
  // One get starts the victim's informer, which lists every object in its worker; only one crosses.
  const relist = victim.list(CM, { namespace: "bulk", fieldSelector: "metadata.name=none" })
    .then(() => performance.now() - started);
  phases.relist = await openLoopCovering(setup.rate, relist, read, {
    minMs: setup.phaseMs,
    marginMs: 1_000,
    maxMs: 300_000,
    what: "the victim's relist",
  });
  log(`ours: victim relist took ${((await relist) / 1000).toFixed(1)} s`);
  const flood = sim.flood("workload-1", {
    count: setup.floodCount,
    bytes: 256,
    namespace: "flood",
  });
  phases.flood = await openLoop(setup.rate, setup.phaseMs, read);
  await flood;
  await sim.hang("workload-1", true);
  const stuck = victim.get(CM, { namespace: "bulk", name: "nope" }).catch(() => {});
  phases.hang = await openLoop(setup.rate, setup.phaseMs, read);
  await sim.hang("workload-1", false);
  await Promise.race([stuck, sleep(5_000)]);
  return phases;
}

async function naive(setup: Setup, log: (m: string) => void, real: boolean): Promise<Phases> {
  const sim = await startBenchFleet(real, setup.healthy + 1);
  await seed(sim, setup);
  const informers = await Promise.all(
    healthyClusters(setup).map(async (cluster) => {
      const c = await naiveInformer(await sim.kubeconfig(cluster), cluster, "configmaps", "app");
      return { cluster, c, names: c.informer.list().map((o) => o.metadata!.name!) };
    }),
  );
  let n = 0;
  const read = () => {
    const t = informers[n++ % informers.length]!;
    return t.c.get("app", t.names[n % t.names.length]!);
  };
  await openLoop(setup.rate, 500, read);
  const phases: Phases = { quiet: [], relist: [], flood: [], hang: [] };
  phases.quiet = await openLoop(setup.rate, setup.phaseMs, read);
  log("naive: quiet done; relisting the victim's bulk kind on the main thread");
  const started = performance.now();
  const victimText = await sim.kubeconfig("workload-1");
  const victim = naiveInformer(victimText, "workload-1", "configmaps").then((v) => {
    log(`naive: victim relist took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return v;
  });
  // Until the relist has been applied (its 100 MB parse on this thread included), and a margin.
  phases.relist = await openLoopCovering(setup.rate, victim, read, {
    minMs: setup.phaseMs,
    marginMs: 1_000,
    maxMs: 300_000,
    what: "the naive victim's relist",
  });
  const v = await victim;
  const flood = sim.flood("workload-1", {
    count: setup.floodCount,
    bytes: 256,
    namespace: "flood",
  });
  phases.flood = await openLoop(setup.rate, setup.phaseMs, read);
  await flood;
  log("naive: flood done; hanging the victim");
  await sim.hang("workload-1", true);
  phases.hang = await openLoop(setup.rate, setup.phaseMs, read);
  await sim.hang("workload-1", false);
  if (real) {
    // Stopping client-node's informers after a real API server hung aborts Deno itself (an nghttp2
    // assertion on GOAWAY in node:http2, seen on Deno 2.9.6): leave them, and the servers, to the
    // end of this process (the servers exit with it).
    log("naive: done; client-node's informers are left to the end of the process");
    return phases;
  }
  await v.informer.stop();
  for (const i of informers) await i.c.informer.stop();
  await sim[Symbol.asyncDispose]();
  return phases;
}

export async function isolation(
  quick: boolean,
  log: (m: string) => void,
  real = false,
): Promise<IsolationResult> {
  const setup: Setup = quick
    ? { healthy: 3, bulk: 10_000, floodCount: 10_000, phaseMs: 1_500, rate: 400 }
    : { healthy: 8, bulk: 50_000, floodCount: 50_000, phaseMs: 8_000, rate: 500 };
  const a = await ours(setup, log, real);
  const b = await naive(setup, log, real);
  const figures: Figure[] = [];
  const chart: IsolationResult["chart"] = [];
  for (
    const [label, p] of [["quiet", a.quiet], ["relist", a.relist], ["flood", a.flood], [
      "hang",
      a.hang,
    ]] as const
  ) {
    void p;
    const oursP99 = percentile(a[label], 99);
    const naiveP99 = percentile(b[label], 99);
    chart.push({
      label: `${label} p99`,
      bars: [{ name: "ours (workers)", value: oursP99 }, {
        name: "naive (main thread)",
        value: naiveP99,
      }],
    });
    figures.push(
      figure(`isolation_${label}_p50_ms`, percentile(a[label], 50), "ms", {
        baseline: percentile(b[label], 50),
      }),
    );
    figures.push(figure(`isolation_${label}_p99_ms`, oursP99, "ms", { baseline: naiveP99 }));
  }
  const note =
    `${setup.healthy} healthy clusters, victim with ${setup.bulk} x 2 KB objects, ${setup.rate} reads/s open loop, ${
      real ? "real kube-apiservers" : "simulator"
    }`;
  for (const phase of ["relist", "hang", "flood"] as const) {
    const oursRatio = percentile(a[phase], 99) / percentile(a.quiet, 99);
    const naiveRatio = percentile(b[phase], 99) / percentile(b.quiet, 99);
    figures.push(figure(`isolation_${phase}_p99_ratio`, oursRatio, "x", { goal: "<= 1.5", note }));
    figures.push(figure(`isolation_${phase}_p99_ratio_naive`, naiveRatio, "x", { note }));
  }
  return { figures, chart };
}
