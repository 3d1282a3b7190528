import assert from "node:assert/strict";
import { type CacheOptions, ClusterCacheError } from "../mod.ts";
import { eventually, fixture, key, POOLED } from "./helpers/fixture.ts";

const CONFIGMAP = { apiVersion: "v1", kind: "ConfigMap" };

/** Cache options whose ConfigMap transform misbehaves on purpose (see fixtures/misbehaving_transforms.ts). */
function misbehaving(exportName: "crashOnName" | "hogOnName"): CacheOptions {
  return {
    byObject: [{
      kind: CONFIGMAP,
      transform: {
        module: new URL("./fixtures/misbehaving_transforms.ts", import.meta.url).href,
        export: exportName,
      },
    }],
  };
}

Deno.test("a successful probe resets failures to 0 and sets the last success to the last probe", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 300, failureThreshold: 50 },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  server.setFaults({ errorRate: { rate: 1, codes: [500], retryAfterSeconds: 1 } });
  await eventually(
    () => f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures >= 2,
    "failed probes",
  );
  const failing = f.cache.getHealthCheckingState(key("workload-1"));
  assert.ok(failing.lastProbeTime > failing.lastProbeSuccessTime);
  await server.clearFaults();
  await eventually(
    () => f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures === 0,
    "a successful probe",
  );
  const healthy = f.cache.getHealthCheckingState(key("workload-1"));
  assert.equal(healthy.lastProbeSuccessTime, healthy.lastProbeTime);
  assert.equal(
    f.cache.getLastProbeSuccessTimestamp(key("workload-1")),
    healthy.lastProbeSuccessTime,
  );
  const metrics = await f.cache.metrics.registry.metrics();
  assert.match(
    metrics,
    /capi_cluster_cache_healthchecks_total\{cluster_name="workload-1",cluster_namespace="default",status="error"\} [1-9]/,
  );
  assert.match(
    metrics,
    /capi_cluster_cache_healthcheck\{cluster_name="workload-1",cluster_namespace="default"\} 1/,
  );
  assert.match(
    metrics,
    /capi_cluster_cache_connection_up\{cluster_name="workload-1",cluster_namespace="default"\} 1/,
  );
  const heap = metrics.match(/clustercache_worker_heap_bytes\{worker="([^"]+)"\} (\d+)/);
  assert.ok(heap, "a successful probe reports the worker's heap");
  assert.match(heap[1]!, POOLED ? /^pool \d+$/ : /^default\/workload-1$/);
  assert.ok(Number(heap[2]) > 1_000_000, `a worker heap of ${heap[2]} bytes is implausibly small`);
});

Deno.test("failures reaching the threshold disconnect; reconnects wait for the retry interval", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 200, failureThreshold: 3 },
    connectionCreationRetryIntervalMs: 1_000,
  });
  const source = f.cache.getClusterSource("probe", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((_r, e) => events.push(e.reasons.join("+")));
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const hungAt = Date.now();
  await server.hang(true);
  await eventually(
    () => !f.cache.getConnectionState(key("workload-1")).connected,
    "a disconnect after 3 failed probes",
  );
  const state = f.cache.getHealthCheckingState(key("workload-1"));
  assert.equal(state.consecutiveFailures, 3, "disconnected exactly at the threshold");
  assert.ok(Date.now() - hungAt >= 3 * 200, "three probes timed out first");
  assert.deepEqual(events, ["connect", "disconnect"]);
  const before = server.requestCount;
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(server.requestCount, before, "no connection attempt inside the retry interval");
  await server.hang(false);
  await f.connected("workload-1");
  assert.deepEqual(events, ["connect", "disconnect", "connect"]);
  source.close();
});

Deno.test("401 disconnects at once (one failed probe) and reconnects as soon as the Secret has working credentials", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 300, failureThreshold: 5 },
    connectionCreationRetryIntervalMs: 300,
  });
  const source = f.cache.getClusterSource("auth", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((_r, e) => events.push(e.reasons.join("+")));
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  await server.rotateCredentials({ notify: false }); // the server rotated; the Secret is still stale
  await eventually(
    () => !f.cache.getConnectionState(key("workload-1")).connected,
    "a disconnect on 401",
  );
  assert.equal(events.at(-1), "disconnect");
  // The 1 ms requeue tries at once; with stale credentials the connect itself fails.
  await eventually(
    () =>
      /cluster is not reachable: 401 Unauthorized/.test(
        f.cache.getConnectionState(key("workload-1")).lastConnectionError ?? "",
      ),
    "an immediate reconnect attempt refused with 401",
  );
  f.fleet.refreshKubeconfigSecret("workload-1");
  await f.connected("workload-1");
  assert.equal(events.at(-1), "connect");
  source.close();
});

Deno.test("an uncaught error in a worker is contained: the cluster disconnects and reconnects, the process lives", async () => {
  await using f = await fixture({ clusters: 2 }, {
    cache: misbehaving("crashOnName"),
  });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const source = f.cache.getClusterSource("crash", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((request, e) => events.push(`${request} ${e.reasons.join("+")}`));
  assert.deepEqual(events.splice(0).sort(), ["workload-1 connect", "workload-2 connect"]);
  const client = f.cache.getClient(key("workload-1"));
  await client.list(CONFIGMAP); // starts the informer with the transform
  // Planted on the server directly: a create through the dying worker could itself be cut off.
  const server = f.fleet.cluster("workload-1");
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "crash", namespace: "default" },
  });
  // In the order it happened: the crash disconnected it, the same reconcile connected it again.
  await eventually(
    () => events.includes("workload-1 disconnect+connect"),
    "a disconnect and reconnect of workload-1",
  );
  // The reconnected worker meets the object again and crashes again: remove it, and all is well.
  server.store.delete(server.typeOf("", "configmaps")!, "default", "crash");
  await f.connected("workload-1");
  assert.ok(!events.some((e) => e.startsWith("workload-2")), "the other cluster never noticed");
  const list = await f.cache.getClient(key("workload-2")).list(CONFIGMAP);
  assert.equal(list.items.length, 0);
  source.close();
});

Deno.test("an unresponsive worker fails its probes and is replaced, without stalling the main thread", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 200, failureThreshold: 2 },
    connectionCreationRetryIntervalMs: 300,
    cache: misbehaving("hogOnName"),
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "hog", namespace: "default" },
  });
  const reading = f.cache.getClient(key("workload-1")).list(CONFIGMAP).then(
    () => undefined,
    (e: Error) => e,
  );
  // The main thread keeps ticking while the worker spins.
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  try {
    await eventually(
      () => !f.cache.getConnectionState(key("workload-1")).connected,
      "the stuck worker to be disconnected",
    );
    assert.ok(ticks > 20, `the main thread kept running (${ticks} ticks)`);
  } finally {
    clearInterval(ticker);
  }
  const error = await reading;
  assert.ok(
    error?.name === "ClusterNotConnectedError" || error instanceof ClusterCacheError,
    String(error),
  );
  server.store.delete(server.typeOf("", "configmaps")!, "default", "hog");
  await f.connected("workload-1");
});

Deno.test("a worker crash is one failed probe, even with a probe in flight", async () => {
  await using f = await fixture({ clusters: 1 }, {
    // Slow answers and frequent probes: a probe is nearly always in flight when the crash comes.
    healthProbe: { intervalMs: 50, timeoutMs: 3_000, failureThreshold: 10 },
    cache: misbehaving("crashOnName"),
  });
  await f.connected("workload-1");
  await f.cache.getClient(key("workload-1")).list(CONFIGMAP);
  const server = f.fleet.cluster("workload-1");
  const errors = async () =>
    Number(
      /capi_cluster_cache_healthchecks_total\{cluster_name="workload-1",cluster_namespace="default",status="error"\} (\d+)/
        .exec(await f.cache.metrics.registry.metrics())?.[1] ?? 0,
    );
  const before = await errors();
  server.setFaults({ latencyMs: 300 });
  await new Promise((r) => setTimeout(r, 400));
  const source = f.cache.getClusterSource("crash-count", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((_r, e) => events.push(e.reasons.join("+")));
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "crash", namespace: "default" },
  });
  await eventually(() => events.some((e) => e.includes("disconnect")), "the crash's disconnect");
  server.store.delete(server.typeOf("", "configmaps")!, "default", "crash");
  await server.clearFaults();
  await f.connected("workload-1");
  assert.equal(await errors() - before, 1, "one failed probe for one crash");
  source.close();
});

Deno.test("a probe left unanswered while this process was starved is inconclusive, not a failure", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 50, timeoutMs: 200, failureThreshold: 3 },
    connectionCreationRetryIntervalMs: 300,
    cache: misbehaving("hogOnName"),
  });
  await f.connected("workload-1");
  await f.cache.getClient(key("workload-1")).list(CONFIGMAP);
  const metric = async (pattern: RegExp) =>
    Number(pattern.exec(await f.cache.metrics.registry.metrics())?.[1] ?? 0);
  const labels = `cluster_name="workload-1",cluster_namespace="default"`;
  const inconclusive = () =>
    metric(new RegExp(`clustercache_healthchecks_inconclusive_total\\{${labels}\\} (\\d+)`));
  const server = f.fleet.cluster("workload-1");
  // The worker stops answering (its event loop is busy for 30 s)...
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "hog", namespace: "default" },
  });
  await new Promise((r) => setTimeout(r, 300)); // a probe is out, unanswered
  // ...and this thread is starved past that probe's deadline, as on an overloaded machine: the
  // probe cannot tell whether the cluster answered.
  const end = performance.now() + 2_500;
  while (performance.now() < end) Math.sqrt(Math.random());
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(await inconclusive() >= 1, "the starved probe was counted as inconclusive");
  // With this thread responsive again, the silent worker fails its probes and is replaced.
  server.store.delete(server.typeOf("", "configmaps")!, "default", "hog");
  await eventually(
    () => f.cache.getHealthCheckingState(key("workload-1")).consecutiveFailures >= 1,
    "probes of the silent worker to fail",
  );
});
