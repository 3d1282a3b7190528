/**
 * Every fault of the simulated API server (SPEC section 8): the cache survives it, sends the cluster
 * source events the rules ask for, does not hot-loop while it lasts, and afterwards converges: the
 * cache of the watched kind equals a fresh list from the server.
 */
import assert from "node:assert/strict";
import type { ClusterCacheOptions, ClusterEvent } from "../mod.ts";
import { ClusterCacheError, isForbidden } from "../mod.ts";
import type { SimulatedApiServer, SimulatedApiServerOptions } from "../testing/mod.ts";
import { converged, truth } from "./helpers/converge.ts";
import { eventually, type Fixture, fixture, key, POOLED } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const POD = { apiVersion: "v1", kind: "Pod" };
const W1 = key("workload-1");

interface Rig extends AsyncDisposable {
  f: Fixture;
  server: SimulatedApiServer;
  events: string[];
  write(count?: number): void;
  converges(timeoutMs?: number): Promise<void>;
  lists(): Promise<number>;
}

let written = 0;

/**
 * One cluster, its ConfigMap informer started, a source recording events. The source is added after
 * the first connect: it hears that connect at once, and the rig starts recording after it.
 */
async function rig(
  cacheOptions: Partial<ClusterCacheOptions> = {},
  server: Partial<SimulatedApiServerOptions> = {},
): Promise<Rig> {
  const f = await fixture({ clusters: 1, server }, cacheOptions);
  await f.connected("workload-1");
  const s = f.fleet.cluster("workload-1");
  const source = f.cache.getClusterSource("faults", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((_r, e: ClusterEvent) => events.push(e.reasons.join("+")));
  assert.deepEqual(events.splice(0), ["connect"], "a late source hears the earlier connect");
  const type = s.typeOf("", "configmaps")!;
  const write = (count = 1) => {
    for (let i = 0; i < count; i++) {
      s.store.create(type, {
        metadata: { name: `w-${written++}`, namespace: "default" },
        data: { i: String(i) },
      });
    }
  };
  write(3);
  await f.cache.getReader(W1).list(CM);
  return {
    f,
    server: s,
    events,
    write,
    converges: (timeoutMs = 15_000) =>
      eventually(
        async () => {
          try {
            return converged((await f.cache.getReader(W1).list(CM)).items, s, "", "configmaps");
          } catch {
            return false;
          }
        },
        "the cache to equal a fresh list",
        timeoutMs,
      ),
    lists: async () => {
      const text = await f.cache.metrics.registry.metrics();
      const match =
        /clustercache_informer_events_total\{[^}]*kind="v1 ConfigMap",event="list"\} (\d+)/.exec(
          text,
        );
      return Number(match?.[1] ?? 0);
    },
    async [Symbol.asyncDispose]() {
      source.close();
      await f[Symbol.asyncDispose]();
    },
  };
}

/** Requests that reached the server in a window, probes excluded. */
function nonProbe(server: SimulatedApiServer, since: number): number {
  return server.requestsSince(since, { includeWatches: true }).filter((r) => r.path !== "/").length;
}

Deno.test("fault ECONNREFUSED: disconnect, connection attempts only at the retry interval, converge after", async () => {
  await using r = await rig({ connectionCreationRetryIntervalMs: 500 });
  await r.server.stop();
  await eventually(() => !r.f.cache.getConnectionState(W1).connected, "a disconnect");
  r.write(5);
  // Three more attempts, however long a slow machine takes for them: never closer than the interval.
  const attempts: number[] = [];
  let failures = r.f.cache.getHealthCheckingState(W1).consecutiveFailures;
  await eventually(
    () => {
      const state = r.f.cache.getHealthCheckingState(W1);
      if (state.consecutiveFailures > failures) {
        failures = state.consecutiveFailures;
        attempts.push(state.lastProbeTime);
      }
      return attempts.length >= 3;
    },
    "three more connection attempts",
    60_000,
  );
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
  assert.ok(
    gaps.every((gap) => gap >= 450),
    `attempts ${gaps.join(", ")} ms apart; interval 500 ms`,
  );
  assert.match(
    r.f.cache.getConnectionState(W1).lastConnectionError ?? "",
    /cluster is not reachable: .*[Cc]onnection refused/,
  );
  await r.server.start();
  await r.f.connected("workload-1");
  await r.converges();
  assert.deepEqual(r.events, ["disconnect", "connect"]);
});

Deno.test("fault hung accept/TLS: probes time out, disconnect, reconnect and converge after", async () => {
  await using r = await rig();
  await r.server.hang(true);
  await eventually(() => !r.f.cache.getConnectionState(W1).connected, "a disconnect");
  r.write(4);
  await r.server.hang(false);
  await r.f.connected("workload-1");
  await r.converges();
  assert.deepEqual(r.events, ["disconnect", "connect"]);
});

Deno.test("fault slow headers: under the timeouts all works; above, probes fail and the cluster disconnects", async () => {
  await using r = await rig();
  r.server.setFaults({ latencyMs: 200 });
  r.write(2);
  await r.converges();
  assert.deepEqual(r.events, [], "200 ms of latency is under every timeout");
  r.server.setFaults({ latencyMs: 900 });
  await eventually(
    () => !r.f.cache.getConnectionState(W1).connected,
    "a disconnect when probes time out",
  );
  await r.server.clearFaults();
  await r.f.connected("workload-1");
  await r.converges();
});

Deno.test("fault slow body: a list trickling past the request timeout is retried, and converges after", async () => {
  await using r = await rig({
    healthProbe: { intervalMs: 200, timeoutMs: 2_000, failureThreshold: 100 },
    watchList: false, // paged lists: the bodies this fault slows down
  });
  r.write(40);
  // Start a second informer (Pods) while every body trickles 32 bytes per 20 ms: a Pod list of
  // this size cannot arrive within the 2 s request timeout.
  r.server.setFaults({ slowBody: { chunkBytes: 32, intervalMs: 20 } });
  await r.server.flood({ count: 30, kind: "pods", namespace: "slow" });
  const since = Date.now();
  // The first read may give up (sync timeout): the informer keeps retrying behind it.
  void r.f.cache.getReader(W1).list(POD).catch(() => {});
  await new Promise((res) => setTimeout(res, 3_000));
  await r.server.clearFaults();
  await eventually(
    async () => {
      try {
        return converged((await r.f.cache.getReader(W1).list(POD)).items, r.server, "", "pods");
      } catch {
        return false;
      }
    },
    "Pods to sync after the body speeds up",
    20_000,
  );
  const podLists = r.server.requestsSince(since).filter((q) => q.path === "/api/v1/pods").length;
  assert.ok(podLists >= 2, `the timed-out list was retried (${podLists} lists)`);
  await r.converges();
});

Deno.test("fault 503/429 with Retry-After: retries wait for it (no hot loop); converge after", async () => {
  await using r = await rig({
    healthProbe: { intervalMs: 200, timeoutMs: 500, failureThreshold: 1_000 },
  });
  for (const code of [503, 429]) {
    r.server.setFaults({ errorRate: { rate: 1, codes: [code], retryAfterSeconds: 1 } });
    r.server.dropWatches("reset"); // the informer must come back through the failing server
    const since = Date.now();
    r.write(3);
    await new Promise((res) => setTimeout(res, 2_000));
    const informer = nonProbe(r.server, since);
    assert.ok(informer <= 5, `${informer} informer requests in 2 s with Retry-After: 1 (${code})`);
    await r.server.clearFaults();
    await r.converges();
  }
  assert.ok(
    r.f.cache.getConnectionState(W1).connected,
    "a high threshold kept the cluster connected",
  );
});

Deno.test("fault 500 without Retry-After: exponential backoff, converge after", async () => {
  await using r = await rig({
    healthProbe: { intervalMs: 200, timeoutMs: 500, failureThreshold: 1_000 },
  });
  r.server.setFaults({ errorRate: { rate: 1, codes: [500], retryAfterSeconds: 0 } });
  r.server.dropWatches("reset");
  const since = Date.now();
  r.write(2);
  await new Promise((res) => setTimeout(res, 2_500));
  const informer = nonProbe(r.server, since);
  assert.ok(informer <= 6, `${informer} informer requests in 2.5 s under backoff`);
  await r.server.clearFaults();
  await r.converges();
});

Deno.test("fault 401 after credential rotation: disconnect at once, reconnect with the new Secret, converge", async () => {
  await using r = await rig({
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 50 },
  });
  await r.server.rotateCredentials({ notify: false });
  await eventually(() => !r.f.cache.getConnectionState(W1).connected, "a disconnect on 401");
  assert.equal(r.f.cache.getHealthCheckingState(W1).consecutiveFailures, 1, "one 401 was enough");
  r.write(3);
  r.f.fleet.refreshKubeconfigSecret("workload-1");
  await r.f.connected("workload-1");
  await r.converges();
  assert.deepEqual(r.events, ["disconnect", "connect"]);
});

Deno.test("fault 403 on one kind: that kind fails at once, others work, no hot loop; converge once allowed", async () => {
  await using r = await rig();
  r.server.setFaults({ forbiddenKinds: ["pods"] });
  const since = Date.now();
  await assert.rejects(r.f.cache.getReader(W1).list(POD), (e: Error) => isForbidden(e));
  r.write(2);
  await r.converges();
  await new Promise((res) => setTimeout(res, 1_500));
  const podRequests =
    r.server.requestsSince(since, { includeWatches: true }).filter((q) => q.path.endsWith("/pods"))
      .length;
  assert.ok(podRequests <= 4, `${podRequests} Pod requests in 1.5 s while forbidden`);
  r.server.setFaults({ forbiddenKinds: [] });
  await eventually(async () => {
    try {
      return converged((await r.f.cache.getReader(W1).list(POD)).items, r.server, "", "pods");
    } catch {
      return false;
    }
  }, "Pods to sync once allowed");
  assert.deepEqual(r.events, [], "a 403 is not a reason to disconnect");
});

Deno.test("fault connection reset mid-watch: re-watched from the last resourceVersion, no relist; converges", async () => {
  await using r = await rig();
  const lists = await r.lists();
  for (let i = 0; i < 3; i++) {
    r.write(2);
    r.server.dropWatches("reset");
    r.write(2);
    await r.converges();
  }
  assert.equal(await r.lists(), lists, "a cut watch resumes like client-go's: no relist");
  assert.deepEqual(r.events, [], "a reset watch is not a reason to disconnect");
});

Deno.test("HTTP/2: one connection carries a cluster's probes, lists and every watch", async () => {
  await using r = await rig();
  await r.f.cache.getReader(W1).list(POD);
  await r.f.cache.getReader(W1).list({ apiVersion: "v1", kind: "Secret" });
  const since = Date.now();
  await eventually(
    () => r.server.requestsSince(since).some((q) => q.path === "/"),
    "a probe after the informers started",
  );
  const requests = r.server.requests.filter((q) => q.path !== "/version");
  assert.ok(requests.filter((q) => q.watch).length >= 3, "three watches");
  assert.deepEqual([...new Set(requests.map((q) => q.protocol))], ["h2"]);
  assert.deepEqual(
    r.server.connections.map((c) => c.protocol),
    ["h2"],
    "every request of the worker multiplexed on one connection",
  );
});

Deno.test("HTTP/1.1 server (no HTTP/2 by ALPN): reads, watches and writes work, each request on its own connection; a cut watch resumes without a relist", async () => {
  await using r = await rig({}, { http2: false });
  await r.f.cache.getReader(W1).list(POD);
  const client = r.f.cache.getClient(W1);
  await client.create({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "over-http1", namespace: "default" },
    data: { a: "b" },
  });
  await r.converges();
  const requests = r.server.requests.filter((q) => q.path !== "/version");
  assert.ok(requests.filter((q) => q.watch).length >= 2, "two watches");
  assert.deepEqual([...new Set(requests.map((q) => q.protocol))], ["http/1.1"]);
  const lists = await r.lists();
  for (let i = 0; i < 3; i++) {
    r.write(2);
    assert.ok(r.server.dropWatches("reset") >= 1);
    r.write(2);
    await r.converges();
  }
  assert.equal(await r.lists(), lists, "a cut watch resumes from its resourceVersion");
  assert.deepEqual(r.events, [], "a cut watch is not a reason to disconnect");
  await r.f.cache.getReader(W1).get(CM, { namespace: "default", name: "over-http1" });
});

Deno.test("fault HTTP/2 stream reset mid-watch: re-watched on the same connection from the last resourceVersion; converges", async () => {
  await using r = await rig();
  const lists = await r.lists();
  const [connection] = r.server.connections;
  for (let i = 0; i < 3; i++) {
    r.write(2);
    assert.equal(r.server.dropWatches("reset-stream"), 1);
    r.write(2);
    await r.converges();
  }
  assert.equal(await r.lists(), lists, "a reset stream resumes like client-go's: no relist");
  assert.deepEqual(r.events, [], "a reset stream is not a reason to disconnect");
  assert.deepEqual(
    r.server.connections.map((c) => c.id),
    [connection!.id],
    "the connection lives on",
  );
});

Deno.test("fault HTTP/2 GOAWAY: the watch in flight goes on, new requests take a new connection; no relist, converges", async () => {
  await using r = await rig();
  const lists = await r.lists();
  const [old] = r.server.connections;
  const told = Date.now();
  assert.equal(r.server.goAway(), 1);
  r.write(2);
  await r.converges(); // through the watch still open on the old connection
  // A watch cut by the GOAWAY would be started again within this.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.deepEqual(
    r.server.requestsSince(told, { includeWatches: true }).filter((q) => q.watch),
    [],
    "the watch in flight carried the changes: none was started again",
  );
  const since = Date.now();
  r.server.dropWatches("close");
  r.write(2);
  await r.converges();
  const rewatch = r.server.requestsSince(since, { includeWatches: true }).find((q) => q.watch);
  assert.ok(rewatch, "a new watch");
  assert.notEqual(
    rewatch.connection,
    old!.id,
    "the new watch is not sent on a connection told to go away",
  );
  await eventually(
    () => r.server.connections.every((c) => c.id !== old!.id),
    "the old connection to close once its last stream ended",
  );
  assert.equal(await r.lists(), lists, "no relist");
  assert.deepEqual(r.events, [], "a GOAWAY is not a reason to disconnect");
});

Deno.test("fault silent watch: the idle watchdog restarts it; converges without a relist or a disconnect", async () => {
  await using r = await rig({ watchIdleTimeoutMs: 600 });
  const lists = await r.lists();
  r.server.setFaults({ silenceWatches: true });
  r.write(4);
  await new Promise((res) => setTimeout(res, 300));
  r.server.setFaults({ silenceWatches: false });
  await r.converges();
  assert.equal(await r.lists(), lists);
  assert.deepEqual(r.events, []);
});

Deno.test("fault 410 storm: history outrun while the watch was away; one relist converges", async () => {
  await using r = await rig({}, { historySize: 5 });
  const lists = await r.lists();
  r.server.setFaults({ silenceWatches: true });
  r.write(30);
  const type = r.server.typeOf("", "configmaps")!;
  r.server.store.delete(type, "default", r.server.store.list(type, "default")[0]!.metadata!.name!);
  const lastWrite = r.server.store.resourceVersion;
  r.server.setFaults({ silenceWatches: false });
  r.server.dropWatches("close");
  await r.converges();
  assert.equal(await r.lists(), lists + 1);
  // The metrics say so too, and where the cache is: at the server's resourceVersion.
  const series = (name: string) => async () => {
    const text = await r.f.cache.metrics.registry.metrics();
    return Number(new RegExp(`${name}\\{[^}]*kind="v1 ConfigMap"\\} (\\d+)`).exec(text)?.[1] ?? -1);
  };
  await eventually(
    async () => await series("clustercache_informer_relists_total")() === 1,
    "1 relist",
  );
  await eventually(
    async () => await series("clustercache_informer_last_synced_resource_version")() >= lastWrite,
    "the last synced resourceVersion to reach the server's",
  );
});

Deno.test("fault restart with resourceVersions reset (new UIDs): detected and relisted; converges", async () => {
  await using r = await rig();
  const type = r.server.typeOf("", "configmaps")!;
  const first = r.server.store.list(type, "default")[0]!;
  for (let i = 0; i < 30; i++) {
    r.server.store.update(type, {
      ...r.server.store.get(type, "default", first.metadata!.name!)!,
      data: { n: String(i) },
    });
  }
  await r.converges();
  const uidsBefore = truth(r.server, "", "configmaps");
  await r.server.restart("reset");
  await r.converges();
  assert.notDeepEqual(
    truth(r.server, "", "configmaps"),
    uidsBefore,
    "the restart changed UIDs and versions",
  );
});

Deno.test("fault restart with resourceVersions jumping ahead: 410 then relist; converges", async () => {
  await using r = await rig();
  const lists = await r.lists();
  await r.server.restart("jump");
  r.write(2);
  await r.converges();
  assert.ok((await r.lists()) > lists);
});

for (const watchList of [false, true]) {
  const how = watchList ? "streamed (WatchList)" : "in pages";
  Deno.test(`fault huge list: 50,000 objects arrive ${how} and the cache holds exactly them`, async () => {
    await using r = await rig({ initialSyncTimeoutMs: 60_000, watchList });
    await r.server.flood({ count: 50_000, namespace: "bulk", payloadBytes: 16 });
    const since = Date.now();
    const bulk = await r.f.cache.getReader(W1).list(POD, { namespace: "bulk" }); // a fresh informer
    assert.equal(bulk.items.length, 0);
    const all = r.server.requestsSince(since, { includeWatches: true })
      .filter((q) => q.path === "/api/v1/pods");
    // A pooled session counts a kind (limit=1) before it lists it in a shared worker.
    const counts = all.filter((q) => !q.watch && q.query.limit === "1");
    assert.equal(counts.length, POOLED ? 1 : 0, "a count only where the cache pools");
    // Pooled, the flood promotes the cluster meanwhile: its new worker starts the informer afresh.
    const sessions = Map.groupBy(all.filter((q) => !counts.includes(q)), (q) => q.connection);
    assert.ok(sessions.size === 1 || (POOLED && sessions.size === 2), `${sessions.size} sessions`);
    for (const requests of sessions.values()) {
      if (watchList) {
        assert.deepEqual(requests.map((q) => q.watch), [true], "one streaming watch, no list");
      } else {
        assert.equal(requests.filter((q) => !q.watch).length, 1, "no Pods: one page");
      }
    }
    await r.converges(60_000);
    const cached = (await r.f.cache.getReader(W1).list(CM, { namespace: "bulk" })).items.length;
    assert.equal(cached, 50_000);
  });
}

Deno.test("fault CA rotated and serving name changed: TLS fails with a clear error until the Secret is right", async () => {
  await using r = await rig();
  await r.server.rotateCA(); // also rewrites the Secret: the cache must reconnect on its own
  await r.f.connected("workload-1");
  await r.converges();
  // Now a serving certificate that does not name 127.0.0.1: nothing the Secret can fix.
  await r.server.setServingNames({ dns: ["not-this-host.example"], ips: [] });
  await eventually(
    () => !r.f.cache.getConnectionState(W1).connected,
    "a disconnect on TLS failure",
  );
  // The listener restarts with the new certificate: a refused connect may come first.
  await eventually(
    () => {
      const error = r.f.cache.getConnectionState(W1).lastConnectionError ?? "";
      return /cluster is not reachable/.test(error) && /certificate|NotValidForName/i.test(error);
    },
    "a connection error that names the certificate",
  );
  await r.server.setServingNames();
  await r.f.connected("workload-1");
  r.write(2);
  await r.converges();
});

Deno.test("fault kind removed from discovery: reads of it fail clearly; the informer recovers when it returns", async () => {
  await using r = await rig();
  r.server.setFaults({ removedKinds: ["apps/deployments"] });
  await assert.rejects(
    r.f.cache.getReader(W1).list({ apiVersion: "apps/v1", kind: "Deployment" }),
    (e: Error) => {
      assert.ok(e instanceof ClusterCacheError && e.code === "NoKindMatch", String(e));
      return true;
    },
  );
  r.server.setFaults({ removedKinds: ["configmaps"] }); // the watched kind goes away, then comes back
  r.write(3);
  await new Promise((res) => setTimeout(res, 500));
  r.server.setFaults({ removedKinds: [] });
  await r.converges();
  const deployments = await r.f.cache.getReader(W1).list({
    apiVersion: "apps/v1",
    kind: "Deployment",
  });
  assert.equal(deployments.items.length, 0);
});

Deno.test("fault slow consumer: the server drops a watcher that falls behind; the cache re-watches and converges", async () => {
  await using r = await rig({}, { maxWatchBufferBytes: 4 * 1024, historySize: 100 });
  const before = r.server.openWatches;
  await r.server.flood({ count: 2_000, payloadBytes: 2_000 });
  await r.converges(30_000);
  assert.ok(before >= 1);
});

Deno.test("fault routine server watch timeouts: watches restart without relisting", async () => {
  await using r = await rig({}, { watchTimeoutCapSeconds: 1 });
  const lists = await r.lists();
  for (let i = 0; i < 3; i++) {
    r.write(1);
    await new Promise((res) => setTimeout(res, 1_100));
  }
  await r.converges();
  assert.equal(await r.lists(), lists, "timeouts are not relists");
  const restarts =
    /clustercache_informer_events_total\{[^}]*kind="v1 ConfigMap",event="watchRestart"\} (\d+)/
      .exec(await r.f.cache.metrics.registry.metrics());
  assert.ok(Number(restarts?.[1]) >= 2, `watch restarts: ${restarts?.[1]}`);
  assert.deepEqual(r.events, []);
});
