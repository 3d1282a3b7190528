import assert from "node:assert/strict";
import { ClusterNotConnectedError } from "../mod.ts";
import { liveWorkerCount } from "../src/main/sessions/session.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const NODE = { apiVersion: "v1", kind: "Node" };

// In the spirit of Cluster API's TestClusterCacheConcurrency: 100 clusters, 20 broken, many readers.
Deno.test("100 clusters, 20 broken, 100 concurrent readers: good ones connected and readable, broken ones not", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => {
    unhandled.push(e.reason);
    e.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  const workersBefore = liveWorkerCount();
  try {
    await using f = await fixture({ clusters: 100 }, {
      healthProbe: { intervalMs: 1_000, timeoutMs: 1_000, failureThreshold: 3 },
      connectionCreationRetryIntervalMs: 2_000,
    });
    const broken = f.fleet.clusters.slice(0, 20);
    await Promise.all(broken.map((c, i) => i % 2 === 0 ? c.stop() : c.hang(true)));
    const good = f.fleet.clusters.slice(20).map((c) => c.name);

    await eventually(
      () => good.every((name) => f.cache.getConnectionState(key(name)).connected),
      "every good cluster to connect",
      120_000,
    );
    await eventually(
      () => broken.every((c) => !f.cache.getConnectionState(key(c.name)).connected),
      "every broken cluster to be reported not connected",
      60_000,
    );

    // Readers run until they have done enough, not for a fixed time: a slow machine takes longer.
    let reads = 0;
    let refused = 0;
    const enough = () => reads > 1_000 && refused > 0;
    const budget = Date.now() + 120_000;
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      while (!enough() && Date.now() < budget) {
        const cluster = f.fleet.clusters[(i * 7 + reads + refused) % 100]!;
        try {
          const nodes = await f.cache.getClient(key(cluster.name)).list(NODE);
          assert.equal(nodes.items.length, 1);
          reads++;
        } catch (error) {
          assert.ok(error instanceof ClusterNotConnectedError, `unexpected ${error}`);
          assert.ok(
            broken.some((c) => c.name === cluster.name),
            `${cluster.name} should be connected`,
          );
          refused++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }));
    assert.ok(reads > 1_000, `${reads} reads`);
    assert.ok(refused > 0);
    for (const c of broken) {
      const state = f.cache.getConnectionState(key(c.name));
      assert.ok(state.lastConnectionError, `${c.name} has a connection error`);
    }
    // Good clusters keep being probed: each succeeds again after this point.
    const since = Date.now();
    await eventually(
      () => good.every((name) => f.cache.getLastProbeSuccessTimestamp(key(name)) >= since),
      "every good cluster to be probed successfully again",
      60_000,
    );
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
  assert.deepEqual(unhandled, []);
  assert.equal(liveWorkerCount(), workersBefore, "close() left no worker running");
});
