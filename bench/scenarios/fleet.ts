/**
 * Fleet scale, pooled workers beside dedicated ones and the naive design, in one run: RSS per
 * cluster and cold start at 1,000 clusters, probe lateness at 1,000, events per second, isolation of
 * a pool's healthy clusters while a neighbour relists 50k objects (and how long until that neighbour
 * serves from a worker of its own), and the most clusters one process keeps connected and probed on
 * schedule.
 */
import { ClusterCache, type ObjectKey } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { healthyReads } from "../lib/healthy_reads.ts";
import { startSim } from "../../testing/sim_process.ts";
import {
  descriptorLimit,
  openDescriptors,
  openLoop,
  openLoopCovering,
  percentile,
  sleep,
  waitFor,
} from "../lib/stats.ts";
import { events } from "./events.ts";
import { probe } from "./memory.ts";
import { probes } from "./probes.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

async function coldStarts(n: number, log: (m: string) => void): Promise<Figure[]> {
  await using sim = await startSim(n, ["--bookmark-interval-ms", "60000"]);
  const settleMs = 3_000;
  const naive = await probe("naive", n, sim.dir, settleMs);
  log(`fleet: naive ${n} synced in ${naive.syncedS.toFixed(1)} s`);
  const pooled = await probe("ours", n, sim.dir, settleMs, [], "pooled");
  log(`fleet: pooled ${n}: ${pooled.synced} synced in ${pooled.syncedS.toFixed(1)} s`);
  const dedicated = await probe("ours", n, sim.dir, settleMs, [], "dedicated");
  log(`fleet: dedicated ${n}: ${dedicated.synced} synced in ${dedicated.syncedS.toFixed(1)} s`);
  const mb = (p: typeof naive) => (p.after - p.before) / Math.max(1, p.synced) / 1e6;
  const all = (p: typeof naive) => p.synced === n ? "" : ` (only ${p.synced} of ${n} synced)`;
  const note =
    `${n} clusters connected, one synced Node informer each; simulator in its own process`;
  return [
    figure(`pool_rss_per_cluster_mb_at_${n}`, mb(pooled), "MB", {
      baseline: mb(naive),
      goal: "<= 0.5",
      note: `${note}; process RSS ${(pooled.after / 1e6).toFixed(0)} MB${all(pooled)}`,
    }),
    figure(`naive_rss_per_cluster_mb_at_${n}`, mb(naive), "MB", { note }),
    figure(`dedicated_rss_per_cluster_mb_at_${n}`, mb(dedicated), "MB", {
      note: `${note}${all(dedicated)}`,
    }),
    figure(`pool_cold_start_${n}_ratio`, pooled.syncedS / naive.syncedS, "x", {
      goal: "<= 1.0",
      note: `setup until ${n} clusters are connected and synced: pooled ${
        pooled.syncedS.toFixed(1)
      } s, naive ${naive.syncedS.toFixed(1)} s${all(pooled)}`,
    }),
    figure(`dedicated_cold_start_${n}_ratio`, dedicated.syncedS / naive.syncedS, "x", {
      goal: "<= 10",
      note: `dedicated ${dedicated.syncedS.toFixed(1)} s, naive ${naive.syncedS.toFixed(1)} s${
        all(dedicated)
      }`,
    }),
  ];
}

/**
 * Cached reads on 8 healthy clusters sharing one pooled worker with a victim, quiet and while the
 * victim relists 50k objects; and the time from the relist starting to the victim serving from a
 * worker of its own.
 */
async function poolIsolation(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  const healthy = quick ? 3 : 8;
  const bulk = quick ? 20_000 : 50_000;
  const phaseMs = quick ? 3_000 : 10_000;
  const rate = 500;
  await using sim = await startSim(healthy + 1);
  for (let i = 2; i <= healthy + 1; i++) {
    await sim.admin(`clusters/workload-${i}/flood?count=200&bytes=2000&namespace=app`, {
      method: "POST",
    });
  }
  for (let done = 0; done < bulk; done += 10_000) {
    const count = Math.min(10_000, bulk - done);
    await sim.admin(`clusters/workload-1/flood?count=${count}&bytes=2000&namespace=bulk`, {
      method: "POST",
    });
  }
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-pool-isolation", qps: 1000, burst: 1000, timeoutMs: 300_000 },
    healthProbe: { intervalMs: 2_000, timeoutMs: 2_000, failureThreshold: 1_000 },
    workers: { mode: "pooled", clustersPerWorker: healthy + 1 },
  });
  const key = (name: string): ObjectKey => ({ namespace: "default", name });
  const clusters = Array.from({ length: healthy }, (_, i) => `workload-${i + 2}`);
  await waitFor(
    () => [...clusters, "workload-1"].every((c) => cache.getConnectionState(key(c)).connected),
    "connects",
    60_000,
  );
  const read = await healthyReads(cache, clusters, key);
  await openLoop(rate, 500, read);
  const quiet = await openLoop(rate, phaseMs, read);
  const dedicated = async () =>
    /clustercache_cluster_dedicated_worker\{cluster_name="workload-1",cluster_namespace="default"\} 1/
      .test(await cache.metrics.registry.metrics());
  const started = performance.now();
  let promotedS = Number.NaN;
  const watching = (async () => {
    while (performance.now() - started < 300_000) {
      if (await dedicated()) {
        promotedS = (performance.now() - started) / 1000;
        return;
      }
      await sleep(50);
    }
  })();
  const relist = cache.getReader(key("workload-1"))
    .list(CM, { namespace: "bulk", fieldSelector: "metadata.name=none" })
    .then(() =>
      log(`fleet: pooled victim relist took ${((performance.now() - started) / 1000).toFixed(1)} s`)
    );
  const during = await openLoopCovering(rate, relist, read, {
    minMs: phaseMs,
    marginMs: 1_000,
    maxMs: 300_000,
    what: "the pooled victim's relist",
  });
  await relist;
  await watching;
  log(`fleet: the victim served from its own worker after ${promotedS.toFixed(1)} s`);
  const note =
    `${healthy} healthy clusters sharing a pooled worker with a victim that relists ${bulk} x 2 KB objects, ${rate} reads/s open loop`;
  return [
    figure(
      "pool_isolation_relist_p99_ratio",
      percentile(during, 99) / percentile(quiet, 99),
      "x",
      {
        goal: "<= 1.3",
        note: `${note}; p99 ${percentile(during, 99).toFixed(2)} ms vs ${
          percentile(quiet, 99).toFixed(2)
        } ms quiet`,
      },
    ),
    figure("promotion_s", promotedS, "s", {
      note: "from the relist starting to the victim serving from a worker of its own",
    }),
  ];
}

/**
 * The most clusters kept connected and probed on schedule (lateness p99 < 1 s) in pooled mode, with
 * the default probe interval (10 s, as Cluster API's; the fleet scenario probes 1,000 clusters five
 * times as often). The
 * simulator spreads past 2,000 clusters over processes of its own; this process has one descriptor
 * limit, so a size that would need more descriptors than it may open (at the rate measured at the
 * previous size) is not tried: it says so.
 */
export async function connectedMax(
  quick: boolean,
  log: (m: string) => void,
): Promise<Figure[]> {
  const sizes = quick ? [200, 500] : [2_000, 4_000, 5_000, 10_000];
  let best = 0;
  let perCluster = 0;
  let coresAtMax = Number.NaN;
  const notes: string[] = [];
  const limit = descriptorLimit();
  for (const n of sizes) {
    const needed = Math.ceil(perCluster * n + openDescriptors());
    if (needed > limit) {
      notes.push(
        `${n}: not tried, it would take ~${needed} open descriptors at ${
          perCluster.toFixed(1)
        } a cluster and this process may open ${limit}`,
      );
      log(`fleet: pooled ${notes.at(-1)}`);
      break;
    }
    let figures;
    try {
      figures = await probes(quick, log, {
        clusters: n,
        workers: "pooled",
        prefix: "pool_max_",
        detect: false,
        intervalMs: quick ? 2_000 : 10_000,
      });
    } catch (error) {
      notes.push(`${n}: ${(error as Error).message}`);
      log(`fleet: pooled ${n} failed: ${(error as Error).message}`);
      break;
    }
    const connected = figures[0]!.value;
    const lateness = figures[1]!.value;
    perCluster = figures[3]!.value;
    notes.push(
      `${n}: ${connected} connected, probe lateness p99 ${lateness.toFixed(0)} ms, ${
        figures[2]!.value.toFixed(2)
      } cores, ${perCluster.toFixed(1)} descriptors a cluster`,
    );
    log(`fleet: pooled ${notes.at(-1)}`);
    if (connected === n && lateness < 1_000) {
      best = n;
      coresAtMax = figures[2]!.value;
    } else break;
  }
  return [
    figure("pool_clusters_connected_max", best, "clusters", {
      goal: ">= 10000",
      note:
        `largest fleet tried with every cluster connected and probe lateness p99 < 1 s, probing every ${
          quick ? 2 : 10
        } s (${notes.join("; ")})`,
    }),
    figure(`probe_cpu_cores_at_${best}`, coresAtMax, "cores", {
      note:
        `the whole process (main thread and pooled workers) while ${best} idle clusters are probed every ${
          quick ? 2 : 10
        } s`,
    }),
  ];
}

export async function fleet(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  const n = quick ? 100 : 1000;
  const figures: Figure[] = [];
  figures.push(...await coldStarts(n, log));
  figures.push(
    ...await probes(quick, log, { workers: "pooled", prefix: "pool_", detect: false }),
  );
  figures.push(...await probes(quick, log, { prefix: "dedicated_", detect: false }));
  figures.push(...await events(quick, false, { workers: "pooled", prefix: "pool_" }));
  figures.push(...await events(quick, false, { prefix: "dedicated_" }));
  figures.push(...await poolIsolation(quick, log));
  return figures;
}
