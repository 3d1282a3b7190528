/**
 * Pooled workers: clusters share workers; a cluster whose load would slow its neighbours is promoted
 * to a worker of its own, make-before-break, its watches losing and repeating nothing; a calm one
 * moves back; one that crashes or hangs its pooled worker is restarted alone, its neighbours at once.
 */
import assert from "node:assert/strict";
import type { ClusterCacheOptions, KubeObject, WatchEvent } from "../mod.ts";
import { liveWorkerCount } from "../src/main/sessions/session.ts";
import type { SimulatedApiServer } from "../testing/mod.ts";
import { eventually, type Fixture, fixture, key } from "./helpers/fixture.ts";

const CONFIGMAP = { apiVersion: "v1", kind: "ConfigMap" };

function pooled(
  promotion: NonNullable<ClusterCacheOptions["workers"]>["promotion"] = {},
  more: Partial<ClusterCacheOptions> = {},
): Partial<ClusterCacheOptions> {
  return { workers: { mode: "pooled", clustersPerWorker: 2, promotion }, ...more };
}

async function dedicated(f: Fixture, name: string): Promise<boolean> {
  const text = await f.cache.metrics.registry.metrics();
  const match = new RegExp(
    `clustercache_cluster_dedicated_worker\\{cluster_name="${name}",cluster_namespace="default"\\} (\\d)`,
  ).exec(text);
  return match?.[1] === "1";
}

/**
 * What a watch handler was told, checked as it arrives: an add only for an object it does not know,
 * an update or delete only for one it knows (with the `oldObject` it last saw), never the same
 * resourceVersion twice, never a version older than one it saw of that object, and a delete only
 * of an object the server no longer holds.
 */
class Recorder {
  readonly state = new Map<string, string>();
  /** The newest resourceVersion told of each object, deletes included. */
  readonly highest = new Map<string, number>();
  readonly problems: string[] = [];
  events = 0;

  /** @param server Where deletes are checked (the server deletes first, then tells). */
  constructor(readonly server?: SimulatedApiServer) {}

  handle = (event: WatchEvent): void => {
    this.events++;
    const name = event.object.metadata!.name!;
    const version = event.object.metadata!.resourceVersion!;
    const known = this.state.get(name);
    const newest = this.highest.get(name) ?? 0;
    if (Number(version) < newest) {
      this.problems.push(`${event.type} of ${name} back in time: @${version} after @${newest}`);
    }
    this.highest.set(name, Math.max(newest, Number(version)));
    if (event.type === "add") {
      if (known !== undefined) this.problems.push(`add of known ${name}@${known} as ${version}`);
      this.state.set(name, version);
    } else if (event.type === "update") {
      if (known === undefined) this.problems.push(`update of unknown ${name}`);
      const old = event.oldObject.metadata!.resourceVersion;
      if (old !== known) this.problems.push(`update of ${name}: oldObject @${old}, seen @${known}`);
      if (version === known) this.problems.push(`repeated ${name}@${version}`);
      this.state.set(name, version);
    } else {
      if (known === undefined) this.problems.push(`delete of unknown ${name}`);
      const type = this.server?.typeOf("", "configmaps");
      const there = type && this.server!.store.get(type, "default", name);
      if (there && there.metadata?.uid === event.object.metadata?.uid) {
        this.problems.push(`spurious delete of ${name}@${version}: the server still holds it`);
      }
      this.state.delete(name);
    }
  };

  /** Whether the handler's view is the server's. */
  matches(server: SimulatedApiServer): boolean {
    const type = server.typeOf("", "configmaps")!;
    const objects: KubeObject[] = server.store.list(type, "default");
    if (objects.length !== this.state.size) return false;
    return objects.every((o) => this.state.get(o.metadata!.name!) === o.metadata!.resourceVersion);
  }
}

/**
 * Creates, updates and deletes ConfigMaps named `<prefix>-<n>` quickly until stopped; or, given
 * `updateOnly`, updates those slowly.
 */
function churn(server: SimulatedApiServer, prefix: string, updateOnly?: string[]) {
  const type = server.typeOf("", "configmaps")!;
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      n++;
      if (updateOnly) {
        const target = server.store.get(type, "default", updateOnly[n % updateOnly.length]!);
        if (target) server.store.update(type, { ...target, data: { n: String(n) } });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      server.store.create(type, { metadata: { name: `${prefix}-${n}`, namespace: "default" } });
      const target = server.store.get(type, "default", `${prefix}-${Math.ceil(n / 2)}`);
      if (target) server.store.update(type, { ...target, data: { n: String(n) } });
      if (n % 5 === 0) server.store.delete(type, "default", `${prefix}-${n - 3}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

function createConfigMaps(server: SimulatedApiServer, prefix: string, count: number): void {
  const type = server.typeOf("", "configmaps")!;
  for (let i = 0; i < count; i++) {
    server.store.create(type, { metadata: { name: `${prefix}-${i}`, namespace: "default" } });
  }
}

Deno.test("pooled: clusters share workers, two to a worker, and serve reads and watches", async () => {
  const before = liveWorkerCount();
  await using f = await fixture({ clusters: 4 }, pooled());
  for (const name of ["workload-1", "workload-2", "workload-3", "workload-4"]) {
    await f.connected(name);
    assert.equal(await dedicated(f, name), false);
  }
  // The management cluster's worker, and two pooled workers for four clusters.
  assert.equal(liveWorkerCount() - before, 3);
  for (const name of ["workload-1", "workload-4"]) {
    const nodes = await f.cache.getClient(key(name)).list({ apiVersion: "v1", kind: "Node" });
    assert.ok(nodes.items.length > 0);
  }
  // Heap is reported per worker: two pooled workers, two series (not one per cluster).
  await eventually(async () => {
    const text = await f.cache.metrics.registry.metrics();
    return (text.match(/^clustercache_worker_heap_bytes\{worker="pool \d+"\}/gm) ?? []).length ===
      2;
  }, "one heap series per pooled worker");
  assert.doesNotMatch(await f.cache.metrics.registry.metrics(), /worker_heap_bytes\{cluster_name/);
  const recorder = new Recorder(f.fleet.cluster("workload-3"));
  const watch = await f.cache.watch(key("workload-3"), {
    name: "configmaps",
    kind: CONFIGMAP,
    handler: recorder.handle,
  });
  await watch.synced;
  createConfigMaps(f.fleet.cluster("workload-3"), "cm", 5);
  await eventually(() => recorder.matches(f.fleet.cluster("workload-3")), "the watch to follow");
  assert.deepEqual(recorder.problems, []);
});

Deno.test("pooled: a cluster holding many objects is promoted make-before-break; its watch loses and repeats nothing", async () => {
  await using f = await fixture({ clusters: 2 }, pooled({ objects: 60 }));
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  createConfigMaps(server, "base", 40);
  const recorder = new Recorder(server);
  await (await f.cache.watch(key("workload-1"), {
    name: "configmaps",
    kind: CONFIGMAP,
    handler: recorder.handle,
  })).synced;
  const source = f.cache.getClusterSource("pool", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((request, e) => events.push(`${request} ${e.reasons.join("+")}`));
  events.length = 0;
  const workers = liveWorkerCount();
  const writes = churn(server, "new");
  try {
    await eventually(() => dedicated(f, "workload-1"), "workload-1 to get a worker of its own");
    // Reads go on while and after it moves; the writes go on too.
    await f.cache.getReader(key("workload-1")).list(CONFIGMAP);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await writes.stop();
  }
  await eventually(() => recorder.matches(server), "the watch to reach the server's state");
  assert.deepEqual(recorder.problems, []);
  assert.equal(await dedicated(f, "workload-2"), false, "its neighbour stays pooled");
  assert.equal(liveWorkerCount() - workers, 1, "one worker more: the promoted cluster's own");
  assert.deepEqual(events, [], "no disconnect, no reconnect: the move is invisible");
  assert.match(
    await f.cache.metrics.registry.metrics(),
    /clustercache_worker_moves_total\{direction="promote"\} 1/,
  );
  source.close();
});

Deno.test("pooled: a watch of a kind too big for the pool starts on the cluster's own worker and syncs once each object was told once", async () => {
  await using f = await fixture({ clusters: 2 }, pooled({ objects: 1_000 }));
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  // Three windows of objects, too many for the pool: the pooled worker counts them and lists none,
  // so the watch starts afresh on the worker the cluster is promoted to.
  createConfigMaps(server, "many", 3_000);
  const recorder = new Recorder(server);
  const watch = await f.cache.watch(key("workload-1"), {
    name: "configmaps",
    kind: CONFIGMAP,
    handler: recorder.handle,
  });
  await watch.synced;
  assert.ok(recorder.matches(server), `${recorder.state.size} objects told at synced, not 3,000`);
  assert.deepEqual(recorder.problems, []);
  assert.ok(await dedicated(f, "workload-1"), "it moved to a worker of its own");
  watch.stop();
});

Deno.test("pooled: a watch handed over while its handler is behind on the existing objects syncs once each was told once", async () => {
  // Promoted by its objects alone, once there are more than 3,000 of them.
  await using f = await fixture(
    { clusters: 2 },
    pooled({ objects: 3_000, eventsPerSecond: 1_000_000, busyRatio: 1 }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  createConfigMaps(server, "many", 2_500); // more than two windows, not enough to be promoted
  const recorder = new Recorder(server);
  const gate = Promise.withResolvers<void>();
  const watch = await f.cache.watch(key("workload-1"), {
    name: "configmaps",
    kind: CONFIGMAP,
    handler: async (event) => {
      recorder.handle(event);
      if (recorder.events === 300) await gate.promise; // behind, its window full
    },
  });
  try {
    await eventually(() => recorder.events >= 300, "the handler to start on the existing objects");
    createConfigMaps(server, "more", 1_000); // now it is promoted, its watch handed over
    await eventually(() => dedicated(f, "workload-1"), "the move", 30_000);
  } finally {
    gate.resolve();
  }
  await watch.synced;
  const told = [...recorder.state.keys()].filter((name) => name.startsWith("many-")).length;
  assert.equal(told, 2_500, "every existing object was told before synced");
  await eventually(() => recorder.matches(server), "the watch to reach the server's state");
  assert.deepEqual(recorder.problems, []);
  watch.stop();
});

Deno.test("pooled: a kind too big for a shared worker is listed in a worker of its own, never in the pool", async () => {
  await using f = await fixture({ clusters: 2 }, pooled({ objects: 50 }, { watchList: false }));
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  createConfigMaps(server, "big", 120);
  const since = Date.now();
  // The read that starts the informer waits while the cluster moves, then is answered.
  const list = await f.cache.getReader(key("workload-1")).list(CONFIGMAP);
  assert.equal(list.items.length, 120);
  assert.equal(await dedicated(f, "workload-1"), true);
  const lists = server.requestsSince(since).filter((r) =>
    r.method === "GET" && r.path === "/api/v1/configmaps"
  );
  const counts = lists.filter((r) => r.query.limit === "1");
  const full = lists.filter((r) => r.query.limit !== "1");
  assert.equal(counts.length, 1, "the pooled session only counted");
  assert.ok(full.length > 0, "the list happened");
  assert.ok(
    full.every((r) => r.connection !== counts[0]!.connection),
    "and not on the pooled session's connection",
  );
  assert.equal(await dedicated(f, "workload-2"), false);
});

Deno.test("pooled: reads never go back in time when a cluster moves to a worker of its own", async () => {
  await using f = await fixture(
    { clusters: 2 },
    pooled({ objects: 60 }, {
      watchList: false,
      healthProbe: { intervalMs: 1_000, timeoutMs: 5_000, failureThreshold: 3 },
    }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  createConfigMaps(server, "base", 40);
  const reader = f.cache.getReader(key("workload-1"));
  const count = async () => (await reader.list(CONFIGMAP)).items.length;
  await eventually(async () => await count() === 40, "the informer to hold the first 40");
  // Requests answer late from now on: the old session's watch is open and keeps up; the new
  // session lists, and its watch begins only after the list, late, while creates go on.
  server.setFaults({ latencyMs: 700 });
  const type = server.typeOf("", "configmaps")!;
  const seen: number[] = [];
  let running = true;
  const creates = (async () => {
    for (let n = 0; running; n++) {
      server.store.create(type, { metadata: { name: `more-${n}`, namespace: "default" } });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const reads = (async () => {
    while (running) {
      seen.push(await count());
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    await eventually(() => dedicated(f, "workload-1"), "workload-1 to get a worker of its own");
    await new Promise((r) => setTimeout(r, 1_500)); // past the new session's late watch
  } finally {
    running = false;
    await Promise.all([creates, reads]);
  }
  // Only creates: every read holds at least what the one before it held.
  const back = seen.findIndex((n, i) => i > 0 && n < seen[i - 1]!);
  assert.equal(back, -1, `a read saw ${seen[back]} objects after one saw ${seen[back - 1]}`);
  assert.ok(seen.length > 20, `${seen.length} reads`);
});

Deno.test("pooled: a promoted cluster that calms down moves back into the pool, its watch intact", async () => {
  await using f = await fixture(
    { clusters: 2 },
    pooled({ objects: 30, windowMs: 500, calmMs: 1_000 }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  const recorder = new Recorder(server);
  await (await f.cache.watch(key("workload-1"), {
    name: "configmaps",
    kind: CONFIGMAP,
    handler: recorder.handle,
  })).synced;
  createConfigMaps(server, "many", 40);
  await eventually(() => dedicated(f, "workload-1"), "promotion");
  for (let i = 0; i < 35; i++) server.store.delete(type, "default", `many-${i}`);
  // A trickle of updates (20 a second, under half the threshold) goes on while it moves back.
  const writes = churn(server, "calm", ["many-35", "many-36", "many-37"]);
  try {
    await eventually(async () => !(await dedicated(f, "workload-1")), "demotion", 15_000);
  } finally {
    await writes.stop();
  }
  await eventually(() => recorder.matches(server), "the watch to reach the server's state");
  assert.deepEqual(recorder.problems, []);
  assert.match(
    await f.cache.metrics.registry.metrics(),
    /clustercache_worker_moves_total\{direction="demote"\} 1/,
  );
});

Deno.test("pooled: a watch moved while its handler is behind and its new session lags tells nothing twice, nothing back in time, no spurious delete", async () => {
  await using f = await fixture(
    { clusters: 2 },
    pooled({ objects: 60 }, {
      watchList: false,
      healthProbe: { intervalMs: 1_000, timeoutMs: 5_000, failureThreshold: 3 },
    }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  createConfigMaps(server, "base", 40);
  const recorder = new Recorder(server);
  let slow = true;
  await (await f.cache.watch(key("workload-1"), {
    name: "behind",
    kind: CONFIGMAP,
    handler: async (event) => {
      recorder.handle(event);
      if (slow) await new Promise((r) => setTimeout(r, 2)); // a handler that is behind
    },
  })).synced;
  // Requests answer late: the new session's list and watch trail the old session's open watch.
  server.setFaults({ latencyMs: 700 });
  const writes = churn(server, "moving");
  try {
    await eventually(() => dedicated(f, "workload-1"), "workload-1 to get a worker of its own");
    await new Promise((r) => setTimeout(r, 1_500)); // past the new session's late watch
  } finally {
    await writes.stop();
  }
  slow = false;
  await server.clearFaults();
  await eventually(() => recorder.matches(server), "the watch to reach the server's state", 20_000);
  assert.deepEqual(recorder.problems, []);
});

Deno.test("pooled: a promotion that failed is tried again later; the wish to move is not lost", async () => {
  await using f = await fixture(
    { clusters: 2 },
    pooled({ objects: 30 }, {
      healthProbe: { intervalMs: 500, timeoutMs: 2_000, failureThreshold: 3 },
    }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const server = f.fleet.cluster("workload-1");
  await f.cache.getReader(key("workload-1")).list(CONFIGMAP); // the informer runs
  // The new worker's discovery fails: the first promotion cannot be made.
  server.failRequests({ method: "GET", path: /^\/api\/v1$/ }, 1, 500);
  const since = Date.now();
  createConfigMaps(server, "load", 40);
  await eventually(
    () => server.requestsSince(since).some((r) => r.path === "/api/v1"),
    "a promotion to be tried",
  );
  await eventually(() => dedicated(f, "workload-1"), "the promotion to be tried again", 20_000);
  assert.ok(
    server.requestsSince(since).filter((r) => r.path === "/api/v1").length >= 2,
    "a second attempt",
  );
});

/**
 * A cluster moves to a worker of its own while its token rotates. `keepOld`: the old token stays
 * valid until after the move (as an EKS token does until it expires), so the move succeeds with it
 * and the rotated one must follow it into the new worker; otherwise the old one is refused at once.
 */
async function tokenRotatedDuringMove(keepOld: boolean): Promise<void> {
  await using f = await fixture(
    { clusters: 2, kubeconfigAuth: "token" },
    pooled({ objects: 30 }, {
      watchList: false,
      healthProbe: { intervalMs: 300, timeoutMs: 3_000, failureThreshold: 3 },
    }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const W1 = key("workload-1");
  const server = f.fleet.cluster("workload-1");
  const source = f.cache.getClusterSource("rotation", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((request, e) => events.push(`${request} ${e.reasons.join("+")}`));
  await f.cache.getReader(W1).list(CONFIGMAP);
  await eventually(() => events.length === 2, "the connect events");
  events.length = 0;
  // Slow answers: the new worker takes a while to warm up, and the token rotates meanwhile.
  server.setFaults({ latencyMs: 1_500 });
  const connections = server.connections.length;
  createConfigMaps(server, "load", 40);
  await eventually(
    () => server.connections.length > connections,
    "the new worker to connect",
    10_000,
  );
  const before = f.cache.getRESTConfig(W1).token;
  await server.rotateCredentials({ keepOld }); // the Secret holds the new token
  if (keepOld) {
    await eventually(() => f.cache.getRESTConfig(W1).token !== before, "the rotation applied");
    assert.equal(await dedicated(f, "workload-1"), false, "rotated before the move ended");
  }
  await eventually(() => dedicated(f, "workload-1"), "the move to end", 30_000);
  await server.clearFaults();
  server.retireOldCredentials(); // the old token expires, if it had not
  // Probes on the new worker carry the rotated token: no 401, no reconnect.
  await new Promise((r) => setTimeout(r, 2_000));
  assert.deepEqual(events.filter((e) => e.startsWith("workload-1")), []);
  assert.equal(f.cache.getHealthCheckingState(W1).consecutiveFailures, 0);
  const list = await f.cache.getReader(W1).list(CONFIGMAP);
  assert.equal(list.items.length, 40);
  source.close();
}

Deno.test(
  "pooled: a token rotated while the cluster moves is the one its new worker uses",
  () => tokenRotatedDuringMove(false),
);

Deno.test(
  "pooled: a token rotated into the old worker while the cluster moves reaches the new one before the old token expires",
  () => tokenRotatedDuringMove(true),
);

/** Cache options whose ConfigMap transform misbehaves on purpose (see fixtures/misbehaving_transforms.ts). */
function misbehaving(exportName: "crashOnName" | "hogOnName"): Partial<ClusterCacheOptions> {
  return {
    cache: {
      byObject: [{
        kind: CONFIGMAP,
        transform: {
          module: new URL("./fixtures/misbehaving_transforms.ts", import.meta.url).href,
          export: exportName,
        },
      }],
    },
  };
}

Deno.test("pooled: a cluster that crashes its pooled worker restarts in a worker of its own; its neighbour never notices", async () => {
  await using f = await fixture({ clusters: 2 }, pooled({}, misbehaving("crashOnName")));
  await f.connected("workload-1");
  await f.connected("workload-2");
  const source = f.cache.getClusterSource("crash", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((request, e) => events.push(`${request} ${e.reasons.join("+")}`));
  await eventually(() => events.length === 2, "the connect events");
  events.length = 0;
  await f.cache.getClient(key("workload-1")).list(CONFIGMAP); // starts the informer with the transform
  await f.cache.getClient(key("workload-2")).list(CONFIGMAP);
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  server.store.create(type, { metadata: { name: "crash", namespace: "default" } });
  await eventually(() => events.includes("workload-1 disconnect+connect"), "workload-1 restarted");
  assert.equal(await dedicated(f, "workload-1"), true, "restarted in a worker of its own");
  server.store.delete(type, "default", "crash");
  await f.connected("workload-1");
  assert.ok(!events.some((e) => e.startsWith("workload-2")), "the neighbour never noticed");
  assert.equal(await dedicated(f, "workload-2"), false);
  const list = await f.cache.getClient(key("workload-2")).list(CONFIGMAP);
  assert.equal(list.items.length, 0);
  source.close();
});

Deno.test("pooled: a cluster that hangs its pooled worker restarts alone; its neighbour reconnects at once", async () => {
  const retryMs = 60_000;
  await using f = await fixture(
    { clusters: 2 },
    pooled({}, {
      ...misbehaving("hogOnName"),
      healthProbe: { intervalMs: 100, timeoutMs: 300, failureThreshold: 5 },
      connectionCreationRetryIntervalMs: retryMs,
    }),
  );
  await f.connected("workload-1");
  await f.connected("workload-2");
  const source = f.cache.getClusterSource("hang", (c) => [c.metadata!.name!]);
  const events: { event: string; at: number }[] = [];
  source.subscribe((request, e) =>
    events.push({ event: `${request} ${e.reasons.join("+")}`, at: Date.now() })
  );
  await eventually(() => events.length === 2, "the connect events");
  events.length = 0;
  await f.cache.getClient(key("workload-1")).list(CONFIGMAP);
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  const hungAt = Date.now();
  server.store.create(type, { metadata: { name: "hog", namespace: "default" } });
  // A disconnect, then a connect (in one event or two).
  const restarted = (name: string) =>
    /disconnect.*connect/.test(
      events.filter((e) => e.event.startsWith(`${name} `)).map((e) => e.event).join(" "),
    );
  await eventually(
    () => restarted("workload-1") && restarted("workload-2"),
    "both clusters to be restarted",
  );
  assert.ok(Date.now() - hungAt < retryMs / 2, "no wait for the retry interval");
  assert.equal(await dedicated(f, "workload-1"), true, "the culprit has a worker of its own");
  assert.equal(await dedicated(f, "workload-2"), false, "the neighbour is pooled again");
  const failures = f.cache.getHealthCheckingState(key("workload-2")).consecutiveFailures;
  assert.equal(failures, 0, "the neighbour is not blamed");
  server.store.delete(type, "default", "hog");
  source.close();
});
