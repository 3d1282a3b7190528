/**
 * Isolation from our own consumers: cached-read latency on healthy clusters, quiet and while (a) one
 * cluster's big watch drains through an async handler (the common `await client.get(...)` idiom),
 * and (b) another cluster's big cached list is read again and again; with the main thread's worst
 * stall during each. Ours in both worker modes, side by side with the naive design (client-node
 * informers and handlers on the main thread), each phase covering its disturbance whole.
 */
import { ClusterCache, type ObjectKey } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { healthyReads } from "../lib/healthy_reads.ts";
import { naiveInformer } from "../lib/naive.ts";
import { startBenchFleet } from "../lib/bench_fleet.ts";
import { openLoop, openLoopCovering, percentile, waitFor } from "../lib/stats.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

interface Setup {
  healthy: number;
  bulk: number;
  phaseMs: number;
  rate: number;
}

interface Run {
  quiet: number[];
  handler: number[];
  bigList: number[];
  handlerLagMs: number;
  bigListLagMs: number;
}

/** The worst gap between 5 ms ticks of this thread while `work` runs, less the 5 ms. */
async function withLag<T>(work: () => Promise<T>): Promise<{ result: T; lagMs: number }> {
  let worst = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  try {
    return { result: await work(), lagMs: worst };
  } finally {
    clearInterval(ticker);
  }
}

const healthyNames = (setup: Setup) =>
  Array.from({ length: setup.healthy }, (_, i) => `workload-${i + 3}`);

async function seed(
  sim: Awaited<ReturnType<typeof startBenchFleet>>,
  setup: Setup,
): Promise<void> {
  for (const name of healthyNames(setup)) {
    await sim.flood(name, { count: 200, bytes: 2000, namespace: "app" });
  }
  // workload-1 is watched through a handler, workload-2 listed: each holds the bulk.
  for (const victim of ["workload-1", "workload-2"]) {
    for (let done = 0; done < setup.bulk; done += 10_000) {
      const count = Math.min(10_000, setup.bulk - done);
      await sim.flood(victim, { count, bytes: 2000, namespace: "bulk" });
    }
  }
}

async function ours(
  setup: Setup,
  mode: "dedicated" | "pooled",
  log: (m: string) => void,
): Promise<Run> {
  await using sim = await startBenchFleet(false, setup.healthy + 2);
  await seed(sim, setup);
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-consumers", qps: 1000, burst: 1000, timeoutMs: 120_000 },
    healthProbe: { intervalMs: 2_000, timeoutMs: 2_000, failureThreshold: 1_000 },
    workers: mode === "pooled" ? { mode, clustersPerWorker: 5 } : { mode },
  });
  const key = (name: string): ObjectKey => ({ namespace: "default", name });
  const clusters = healthyNames(setup);
  await waitFor(
    () =>
      [...clusters, "workload-1", "workload-2"].every((c) =>
        cache.getConnectionState(key(c)).connected
      ),
    "connects",
    120_000,
  );
  const read = await healthyReads(cache, clusters, key);
  // The listed cluster's informer syncs before the phases (its relist is the isolation scenario's).
  const bigReader = cache.getReader(key("workload-2"));
  await waitFor(
    async () =>
      (await bigReader.list(CM, { namespace: "bulk" }).catch(() => ({ items: [] })))
        .items.length >= setup.bulk,
    "the big kind to sync",
    300_000,
  );
  await openLoop(setup.rate, 500, read); // warm-up
  const quiet = await openLoop(setup.rate, setup.phaseMs, read);

  log(`ours (${mode}): quiet done; draining a ${setup.bulk}-object watch through an async handler`);
  let handled = 0;
  const drained = Promise.withResolvers<void>();
  const handler = await withLag(async () => {
    const watch = await cache.watch(key("workload-1"), {
      name: "drain",
      kind: CM,
      handler: async (e) => {
        if (e.object.metadata?.namespace !== "bulk") return;
        await read();
        if (++handled >= setup.bulk) drained.resolve();
      },
    });
    const latencies = await openLoopCovering(setup.rate, drained.promise, read, {
      minMs: setup.phaseMs,
      marginMs: 1_000,
      maxMs: 600_000,
      what: "the handler's drain",
    });
    watch.stop();
    return latencies;
  });

  log(
    `ours (${mode}): drained; reading the other cluster's big kind from the cache, again and again`,
  );
  let listing = true;
  let lists = 0;
  const bigList = await withLag(async () => {
    const loop = (async () => {
      while (listing) {
        await bigReader.list(CM, { namespace: "bulk" });
        lists++;
      }
    })();
    const latencies = await openLoop(setup.rate, setup.phaseMs, read);
    listing = false;
    await loop;
    return latencies;
  });
  log(`ours (${mode}): ${lists} lists of ${setup.bulk} objects`);
  return {
    quiet,
    handler: handler.result,
    handlerLagMs: handler.lagMs,
    bigList: bigList.result,
    bigListLagMs: bigList.lagMs,
  };
}

async function naive(setup: Setup, log: (m: string) => void): Promise<Run> {
  const sim = await startBenchFleet(false, setup.healthy + 2);
  await seed(sim, setup);
  const informers = await Promise.all(
    healthyNames(setup).map(async (cluster) => {
      const c = await naiveInformer(await sim.kubeconfig(cluster), cluster, "configmaps", "app");
      return { cluster, c, names: c.informer.list().map((o) => o.metadata!.name!) };
    }),
  );
  const big = await naiveInformer(await sim.kubeconfig("workload-2"), "workload-2", "configmaps");
  let n = 0;
  const read = () => {
    const t = informers[n++ % informers.length]!;
    return t.c.get("app", t.names[n % t.names.length]!);
  };
  await openLoop(setup.rate, 500, read);
  const quiet = await openLoop(setup.rate, setup.phaseMs, read);
  log("naive: quiet done; a handler on the main thread drains the big watch");
  let handled = 0;
  const drained = Promise.withResolvers<void>();
  const first = informers[0]!;
  let victim: Awaited<ReturnType<typeof naiveInformer>> | undefined;
  const handler = await withLag(async () => {
    const started = naiveInformer(await sim.kubeconfig("workload-1"), "workload-1", "configmaps")
      .then((v) => {
        victim = v;
        // client-node calls handlers without waiting for them; they pile up as promises.
        v.informer.on("add", async (object) => {
          if (object.metadata?.namespace !== "bulk") return;
          await first.c.get("app", first.names[0]!);
          if (++handled >= setup.bulk) drained.resolve();
        });
        for (const object of v.informer.list()) {
          if (object.metadata?.namespace === "bulk") {
            void (async () => {
              await first.c.get("app", first.names[0]!);
              if (++handled >= setup.bulk) drained.resolve();
            })();
          }
        }
      });
    return await openLoopCovering(setup.rate, Promise.all([started, drained.promise]), read, {
      minMs: setup.phaseMs,
      marginMs: 1_000,
      maxMs: 600_000,
      what: "the naive handler's drain",
    });
  });
  log("naive: drained; reading the big kind from client-node's cache, again and again");
  let listing = true;
  const bigList = await withLag(async () => {
    const loop = (async () => {
      while (listing) {
        big.informer.list().filter((o) => o.metadata?.namespace === "bulk");
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    const latencies = await openLoop(setup.rate, setup.phaseMs, read);
    listing = false;
    await loop;
    return latencies;
  });
  await victim?.informer.stop();
  await big.informer.stop();
  for (const i of informers) await i.c.informer.stop();
  await sim[Symbol.asyncDispose]();
  return {
    quiet,
    handler: handler.result,
    handlerLagMs: handler.lagMs,
    bigList: bigList.result,
    bigListLagMs: bigList.lagMs,
  };
}

export async function consumers(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  const setup: Setup = quick
    ? { healthy: 3, bulk: 10_000, phaseMs: 1_500, rate: 400 }
    : { healthy: 8, bulk: 50_000, phaseMs: 8_000, rate: 500 };
  const dedicated = await ours(setup, "dedicated", log);
  const pooled = await ours(setup, "pooled", log);
  const base = await naive(setup, log);
  const ratio = (run: Run, phase: "handler" | "bigList") =>
    percentile(run[phase], 99) / percentile(run.quiet, 99);
  const note =
    `${setup.healthy} healthy clusters read at ${setup.rate}/s open loop; a ${setup.bulk}-object watch drained through an async handler (each event awaits a cached get), or a ${setup.bulk}-object cached list read back to back; simulator in its own process`;
  const figures: Figure[] = [];
  for (const [prefix, run] of [["", dedicated], ["pool_", pooled]] as const) {
    figures.push(
      figure(`${prefix}isolation_handler_p99_ratio`, ratio(run, "handler"), "x", {
        baseline: ratio(base, "handler"),
        goal: "<= 1.5",
        note,
      }),
      figure(`${prefix}main_thread_max_lag_ms`, run.handlerLagMs, "ms", {
        baseline: base.handlerLagMs,
        goal: "< 100",
        note: "the worst stall of the main thread while the handler drained",
      }),
      figure(`${prefix}isolation_big_list_p99_ratio`, ratio(run, "bigList"), "x", {
        baseline: ratio(base, "bigList"),
        goal: "<= 1.5",
        note,
      }),
      figure(`${prefix}main_thread_max_lag_big_list_ms`, run.bigListLagMs, "ms", {
        baseline: base.bigListLagMs,
        note: "the worst stall of the main thread while the big list was read again and again",
      }),
    );
  }
  return figures;
}
