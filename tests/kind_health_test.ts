import assert from "node:assert/strict";
import type { SimulatedApiServer } from "../testing/mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const Pod = { apiVersion: "v1", kind: "Pod" };
const Node = { apiVersion: "v1", kind: "Node" };

Deno.test("one kind whose watch is forbidden is failing, said once to sources and in metrics; the cluster and its other kinds stay healthy", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cluster = key("workload-1");
  const reader = f.cache.getReader(cluster);
  await reader.list(Pod);
  await reader.list(Node);
  await eventually(
    () => f.cache.getInformerStates(cluster).filter((s) => s.phase === "synced").length === 2,
    "both kinds synced",
  );
  const reasons: string[] = [];
  const source = f.cache.getClusterSource("kinds", undefined, { watchForKindFailure: [600] });
  source.subscribe((_cluster, event) => reasons.push(...event.reasons));

  // The RBAC of the cache's user loses Pods: the watch breaks and cannot come back.
  const server = f.fleet.cluster("workload-1");
  server.setFaults({ forbiddenKinds: ["pods"] });
  server.dropWatches("close");

  await eventually(
    () =>
      f.cache.getInformerStates(cluster).some((s) => s.kind === "v1 Pod" && s.phase === "failing"),
    "Pods failing",
  );
  const pod = f.cache.getInformerStates(cluster).find((s) => s.kind === "v1 Pod")!;
  assert.ok(pod.failingSince! <= Date.now() && pod.synced, "it still serves what it synced");
  assert.match(pod.lastError ?? "", /forbidden/);
  await eventually(
    () => reasons.includes("watch of v1 Pod failing since more than 600ms"),
    "the source to hear it",
  );
  await new Promise((r) => setTimeout(r, 600)); // more reconciles: it is said once
  assert.equal(reasons.filter((r) => r.startsWith("watch of")).length, 1);

  assert.equal(f.cache.getConnectionState(cluster).connected, true);
  assert.equal(f.cache.getHealthCheckingState(cluster).consecutiveFailures, 0);
  const node = f.cache.getInformerStates(cluster).find((s) => s.kind === "v1 Node")!;
  assert.equal(node.phase, "synced");
  assert.equal((await reader.list(Node)).items.length, 1, "other kinds read as before");

  const metrics = await f.cache.metrics.registry.metrics();
  assert.match(
    metrics,
    /clustercache_informer_synced\{cluster_name="workload-1",cluster_namespace="default",kind="v1 Pod"\} 0/,
  );
  assert.match(
    metrics,
    /clustercache_informer_synced\{cluster_name="workload-1",cluster_namespace="default",kind="v1 Node"\} 1/,
  );
  assert.match(metrics, /clustercache_informer_last_event_age_seconds\{[^}]*kind="v1 Node"\} \d/);

  // Access restored: it recovers by itself.
  server.setFaults({ forbiddenKinds: [] });
  await eventually(
    () => f.cache.getInformerStates(cluster).every((s) => s.phase === "synced"),
    "Pods to recover",
    15_000,
  );
  source.close();
});

/**
 * Fails every other probe (`GET /`) of `server` until `signal` aborts: after each probe that was let
 * through, the next one is armed to fail.
 */
async function flap(server: SimulatedApiServer, signal: AbortSignal): Promise<void> {
  let seen = server.requests.filter((r) => r.path === "/").length;
  let failNext = true;
  if (failNext) server.failRequests({ method: "GET", path: /^\/$/ }, 1, 500);
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 5));
    const now = server.requests.filter((r) => r.path === "/").length;
    for (; seen < now; seen++) {
      failNext = !failNext;
      if (failNext) server.failRequests({ method: "GET", path: /^\/$/ }, 1, 500);
    }
  }
}

async function flappingDisconnects(successThreshold: number, waitMs: number): Promise<boolean> {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 1_000, failureThreshold: 3, successThreshold },
  });
  await f.connected("workload-1");
  const reasons: string[] = [];
  const source = f.cache.getClusterSource("flapping");
  source.subscribe((_c, event) => reasons.push(...event.reasons));
  const stop = new AbortController();
  const flapping = flap(f.fleet.cluster("workload-1"), stop.signal);
  try {
    await eventually(() => reasons.includes("disconnect"), "a disconnect", waitMs);
    return true;
  } catch {
    return false;
  } finally {
    stop.abort();
    await flapping;
    source.close();
  }
}

Deno.test("the probe's success threshold: a cluster failing and succeeding by turns is disconnected with 2, never with Cluster API's 1", async () => {
  assert.equal(await flappingDisconnects(2, 10_000), true, "hysteresis: one success does not heal");
  assert.equal(
    await flappingDisconnects(1, 3_000),
    false,
    "Cluster API's rule: one success resets",
  );
});
