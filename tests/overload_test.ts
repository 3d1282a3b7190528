/**
 * Churn and overload: what the cache does while clusters come, go, hang and rotate during connects,
 * and what a retry costs.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache } from "../mod.ts";
import { liveWorkerCount, startedWorkerCount } from "../src/main/sessions/session.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, fixture, key } from "./helpers/fixture.ts";

const NODE = { apiVersion: "v1", kind: "Node" };

/** Records every unhandled rejection (and keeps it from failing the test run by itself). */
function unhandledRejections(): { reasons: unknown[]; [Symbol.dispose](): void } {
  const reasons: unknown[] = [];
  const listener = (event: PromiseRejectionEvent) => {
    reasons.push(event.reason);
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", listener);
  return {
    reasons,
    [Symbol.dispose]: () => globalThis.removeEventListener("unhandledrejection", listener),
  };
}

Deno.test("a failed connect keeps its worker for the next attempt: retries start no new worker", async () => {
  const live = liveWorkerCount();
  {
    await using f = await fixture({ clusters: 1 }, { connectionCreationRetryIntervalMs: 200 });
    const cluster = f.fleet.cluster("workload-1");
    await f.connected("workload-1");
    await cluster.stop();
    await eventually(
      () => !f.cache.getConnectionState(key("workload-1")).connected,
      "the stopped cluster to be disconnected",
      30_000,
    );
    const started = startedWorkerCount();
    const failures = f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures;
    await eventually(
      () => f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures >= failures + 4,
      "four more failed connects",
      30_000,
    );
    assert.ok(
      startedWorkerCount() - started <= 1,
      `${startedWorkerCount() - started} workers started for four retries`,
    );
    await cluster.start();
    await f.connected("workload-1", 30_000);
    assert.ok(startedWorkerCount() - started <= 1, "the connect used the kept worker");
    const nodes = await f.cache.getClient(key("workload-1")).list(NODE);
    assert.equal(nodes.items.length, 1);
  }
  assert.equal(liveWorkerCount(), live, "close() stopped the kept workers too");
});

Deno.test("a worker kept from a failed attempt is stopped when its Cluster is deleted", async () => {
  const live = liveWorkerCount();
  await using f = await fixture({ clusters: 1 }, { connectionCreationRetryIntervalMs: 200 });
  await f.fleet.cluster("workload-1").stop();
  // Both workers exist now: the management cluster's and the kept one.
  await eventually(
    () => f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures >= 2,
    "failed connects",
    30_000,
  );
  await f.fleet.removeCluster("workload-1");
  await eventually(() => f.cache.clusters().length === 0, "the cluster to be forgotten", 30_000);
  assert.equal(liveWorkerCount(), live + 1, "only the management cluster's worker is left");
});

Deno.test("churn while connecting (stop, hang, rotate, delete, add, close) leaves no rejection unhandled", async () => {
  using unhandled = unhandledRejections();
  const live = liveWorkerCount();
  {
    await using f = await fixture({ clusters: 24 }, {
      healthProbe: { intervalMs: 300, timeoutMs: 500, failureThreshold: 2 },
      connectionCreationRetryIntervalMs: 300,
    });
    const stopReaders = new AbortController();
    // Readers and watchers that never give up, as controllers do; every error they see is handled.
    const readers = Array.from({ length: 8 }, async (_, i) => {
      let n = 0;
      while (!stopReaders.signal.aborted) {
        const name = `workload-${(i * 3 + n++) % 24 + 1}`;
        try {
          const client = f.cache.getClient(key(name));
          await client.list(NODE);
          await f.cache.watch(key(name), { name: `w${i}`, kind: NODE, handler: () => {} });
        } catch { /* not connected, or cut off mid-call: expected here */ }
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    const clusters = f.fleet.clusters;
    const churn = async (round: number) => {
      const c = (i: number) => clusters[(round * 5 + i) % clusters.length]!;
      await Promise.all([
        c(0).stop().then(() => c(0).start()),
        c(1).hang(true).then(() => new Promise((r) => setTimeout(r, 200))).then(() =>
          c(1).hang(false)
        ),
        c(2).rotateCredentials({ resetConnections: true }),
        c(3).rotateCA(),
        (async () => {
          f.fleet.setInfrastructureReady(c(4).name, false);
          await new Promise((r) => setTimeout(r, 50));
          f.fleet.setInfrastructureReady(c(4).name, true);
        })(),
      ]);
    };
    for (let round = 0; round < 6; round++) {
      await churn(round);
      await new Promise((r) => setTimeout(r, 150));
    }
    // Clusters deleted and added while others connect.
    await Promise.all([
      f.fleet.removeCluster("workload-24"),
      f.fleet.removeCluster("workload-23"),
      f.fleet.addCluster("late-1"),
      f.fleet.addCluster("late-2"),
    ]);
    // A second cache closed while its first connects are in flight.
    const management = new KubeConfig();
    management.loadFromString(f.fleet.managementKubeconfig());
    const second = await ClusterCache.setup({ ...FAST, management });
    await new Promise((r) => setTimeout(r, 100));
    await second.close();

    for (const server of f.fleet.clusters) {
      if (server.listenerState !== "serving") await server.start();
    }
    await eventually(
      () => f.fleet.clusters.every((c) => f.cache.getConnectionState(key(c.name)).connected),
      "every remaining cluster to connect after the churn",
      120_000,
    );
    stopReaders.abort();
    await Promise.all(readers);
  }
  // Rejections surface after a turn or two: give them the chance.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(liveWorkerCount(), live, "close() left no worker running");
  assert.deepEqual(unhandled.reasons.map(String), []);
});

Deno.test("close() during a cold start returns promptly and leaves no worker", async () => {
  using unhandled = unhandledRejections();
  const live = liveWorkerCount();
  await using fleet = await SimulatedFleet.start({ clusters: 30 });
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  const cache = await ClusterCache.setup({ ...FAST, management });
  await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  await cache.close();
  const closeMs = performance.now() - started;
  assert.ok(closeMs < 15_000, `close() took ${closeMs.toFixed(0)} ms`);
  const workers = startedWorkerCount();
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(startedWorkerCount(), workers, "no worker was started after close()");
  assert.equal(liveWorkerCount(), live);
  assert.deepEqual(unhandled.reasons.map(String), []);
});
