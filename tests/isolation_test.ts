import assert from "node:assert/strict";
import { ClusterCache, type ClusterCacheOptions } from "../mod.ts";
import { startSim } from "../testing/sim_process.ts";
import { eventually, FAST, fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

Deno.test("while one cluster's API server hangs, reads and watches on another keep working", async () => {
  await using f = await fixture({ clusters: 2 }, {
    // Long probe settings: the hung cluster stays "connected" (and its calls stuck) during the test.
    healthProbe: { intervalMs: 60_000, timeoutMs: 5_000, failureThreshold: 5 },
    client: { userAgent: "isolation", timeoutMs: 30_000 },
  });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const hung = f.fleet.cluster("workload-1");
  await hung.hang(true);
  // A cached read on the hung cluster: its informer cannot list, so this waits (up to the sync timeout).
  let hungSettled = false;
  const hungRead = f.cache.getClient(key("workload-1")).list(CM).then(
    () => hungSettled = true,
    () => hungSettled = true,
  );
  const liveRead = f.cache.getUncachedClient(key("workload-1")).get(CM, {
    namespace: "default",
    name: "x",
  }).then(
    () => {},
    () => {},
  );

  const healthy = f.cache.getClient(key("workload-2"));
  const seen: string[] = [];
  await (await f.cache.watch(key("workload-2"), {
    name: "cms",
    kind: CM,
    handler: (e) => void seen.push(e.object.metadata!.name!),
  })).synced;
  for (let i = 0; i < 20; i++) {
    await healthy.create({ ...CM, metadata: { name: `cm-${i}`, namespace: "default" } });
  }
  const reads = await Promise.all(Array.from({ length: 200 }, () => healthy.list(CM)));
  assert.ok(reads.every((r) => r.items.length <= 20));
  while (seen.length < 20) await new Promise((r) => setTimeout(r, 10));
  assert.equal(seen.length, 20);
  assert.equal(
    hungSettled,
    false,
    "the hung cluster's read is still waiting while the other cluster served everything",
  );
  await hung.hang(false);
  await Promise.all([hungRead, liveRead]);
});

/** The longest the main thread went without running a 5 ms timer, while `work` ran. */
async function worstStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let worst = 0;
  let last = performance.now();
  const sample = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  };
  const ticker = setInterval(sample, 5);
  try {
    const result = await work();
    sample(); // a stall at the very end would otherwise be cut short by clearInterval
    return { result, stallMs: worst };
  } finally {
    clearInterval(ticker);
  }
}

/** A cache over a simulated fleet in a process of its own (its work must not count as ours). */
async function outOfProcessFleet(clusters: number, options: Partial<ClusterCacheOptions> = {}) {
  const sim = await startSim(clusters);
  try {
    const cache = await ClusterCache.setup({ ...FAST, ...options, management: sim.management });
    return {
      sim,
      cache,
      async [Symbol.asyncDispose]() {
        await cache.close();
        await sim[Symbol.asyncDispose]();
      },
    };
  } catch (error) {
    await sim[Symbol.asyncDispose]();
    throw error;
  }
}

Deno.test({
  name:
    "an async handler draining a 30,000-object watch never holds the main thread for long; every object arrives once",
  async fn() {
    await using f = await outOfProcessFleet(2);
    await f.sim.admin("clusters/workload-1/flood?count=30000&bytes=64", { method: "POST" });
    await eventually(
      () => ["workload-1", "workload-2"].every((n) => f.cache.getConnectionState(key(n)).connected),
      "both clusters to connect",
      30_000,
    );
    const seen = new Set<string>();
    let twice = 0;
    const healthy = f.cache.getReader(key("workload-2"));
    const { stallMs } = await worstStall(async () => {
      const handle = await f.cache.watch(key("workload-1"), {
        name: "drain",
        kind: CM,
        handler: async (e) => {
          // The first call waits on something slow (the initial adds pile up meanwhile); the rest
          // resolve at once, the way a handler that awaits a cached read often does.
          if (seen.size === 0) {
            await healthy.get({ apiVersion: "v1", kind: "Namespace" }, { name: "default" });
            await new Promise((r) => setTimeout(r, 300));
          }
          const name = e.object.metadata!.name!;
          if (seen.has(name)) twice++;
          seen.add(name);
        },
      });
      await handle.synced;
      await eventually(() => seen.size >= 30_000, "every object to reach the handler", 120_000);
    });
    assert.equal(twice, 0, "no object was told twice");
    assert.ok(stallMs < 250, `the main thread stalled for ${stallMs.toFixed(0)} ms at worst`);
  },
});

Deno.test({
  name:
    "a cached list of 50,000 Pods reaches the main thread in parts: no long stall while it parses",
  async fn() {
    await using f = await outOfProcessFleet(1, {
      client: { userAgent: "isolation", timeoutMs: 60_000 },
      // The default probe timeout: FAST's 500 ms, three times over, is less than a starved machine
      // takes to serialise 100 MB in the worker the probe shares (pooled), and this test is about
      // the main thread, not about probes.
      healthProbe: { intervalMs: 2_000, timeoutMs: 5_000, failureThreshold: 3 },
    });
    await f.sim.admin("clusters/workload-1/flood?count=50000&kind=pods", { method: "POST" });
    await eventually(
      () => f.cache.getConnectionState(key("workload-1")).connected,
      "the cluster to connect",
      30_000,
    );
    const reader = f.cache.getReader(key("workload-1"));
    const pod = { apiVersion: "v1", kind: "Pod" };
    const first = await reader.list(pod, { namespace: "default" }); // synced and warm
    assert.ok(first.items.length >= 50_000);
    const { result, stallMs } = await worstStall(() => reader.list(pod, { namespace: "default" }));
    assert.equal(result.items.length, first.items.length);
    assert.deepEqual(
      result.items.map((p) => p.metadata?.name),
      first.items.map((p) => p.metadata?.name),
      "the same objects, in the same order",
    );
    // What one list parsed whole on this thread (as before lists travelled in parts) stalls on this
    // machine at this moment: a loaded machine stretches both alike.
    const whole = JSON.stringify(first);
    let baselineMs = 0;
    for (let i = 0; i < 2; i++) {
      const baseline = await worstStall(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return JSON.parse(whole).items.length;
      });
      assert.equal(baseline.result, first.items.length);
      baselineMs = Math.max(baselineMs, baseline.stallMs);
    }
    // Half a whole parse: the code before parts stalled for a whole parse and more (seconds).
    assert.ok(
      stallMs < baselineMs / 2,
      `the main thread stalled for ${
        stallMs.toFixed(0)
      } ms at worst; one parse of the whole list ` +
        `stalls it for ${baselineMs.toFixed(0)} ms here now`,
    );
  },
});
