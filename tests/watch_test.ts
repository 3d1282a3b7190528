import assert from "node:assert/strict";
import {
  ClusterCacheError,
  ClusterNotConnectedError,
  predicates,
  type WatchEvent,
} from "../mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const cm = (
  name: string,
  labels: Record<string, string> = {},
  data: Record<string, string> = {},
) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "default", labels },
  data,
});

Deno.test("watch() delivers existing objects as adds, then changes in order", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await client.create(cm("before"));
  const events: string[] = [];
  await (await f.cache.watch(key("workload-1"), {
    name: "cms",
    kind: CM,
    handler: (e) => void events.push(`${e.type} ${e.object.metadata!.name}`),
  })).synced;
  assert.deepEqual(events, ["add before"], "existing objects arrive before watch() resolves");
  await client.create(cm("a"));
  await client.patch(CM, { namespace: "default", name: "a" }, {
    type: "merge",
    patch: { data: { x: "1" } },
  });
  await client.delete(CM, { namespace: "default", name: "a" });
  await eventually(() => events.length === 4, "three more events");
  assert.deepEqual(events, ["add before", "add a", "update a", "delete a"]);
});

Deno.test("a watch name already watched on the connection is a no-op; a reconnect forgets it", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  let first = 0;
  let second = 0;
  await (await f.cache.watch(key("workload-1"), {
    name: "same",
    kind: CM,
    handler: () => void first++,
  })).synced;
  await (await f.cache.watch(key("workload-1"), {
    name: "same",
    kind: CM,
    handler: () => void second++,
  })).synced;
  await f.cache.getClient(key("workload-1")).create(cm("x"));
  await eventually(() => first === 1, "the first handler to see the add");
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(second, 0, "the second watch with the same name was not added");

  // Reconnect (credentials rotated: the Secret changes, the cache reconnects).
  const source = f.cache.getClusterSource("reconnects", (c) => [c.metadata!.name!]);
  let reconnected = false;
  source.subscribe((_r, e) =>
    reconnected ||= e.reasons.includes("disconnect") && e.reasons.includes("connect")
  );
  await f.fleet.cluster("workload-1").rotateCredentials();
  await eventually(() => reconnected, "a reconnect");
  source.close();
  await (await f.cache.watch(key("workload-1"), {
    name: "same",
    kind: CM,
    handler: () => void second++,
  })).synced;
  await eventually(() => second === 1, "the re-added watch to receive the existing object");
});

Deno.test("watch() on a cluster that is not connected names the watch and the kind", async () => {
  await using f = await fixture();
  await assert.rejects(
    f.cache.watch(key("nope"), { name: "w", kind: CM, handler: () => {} }),
    (e: Error) => {
      assert.ok(e instanceof ClusterNotConnectedError);
      assert.equal(
        e.message,
        "error creating watch w for v1 ConfigMap: connection to the workload cluster is down",
      );
      return true;
    },
  );
});

Deno.test("watch() with an empty name is refused", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  await assert.rejects(
    f.cache.watch(key("workload-1"), { name: "", kind: CM, handler: () => {} }),
    {
      name: "TypeError",
      message: "watch name cannot be empty",
    },
  );
});

Deno.test("declarative predicates run in the worker; function predicates on the main thread", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  const seen: string[] = [];
  await (await f.cache.watch(key("workload-1"), {
    name: "web-only",
    kind: CM,
    predicates: [
      predicates.labelSelector("app=web"),
      (e: WatchEvent) => e.object.metadata!.name !== "skip-me",
    ],
    handler: (e) => void seen.push(`${e.type} ${e.object.metadata!.name}`),
  })).synced;
  await client.create(cm("w1", { app: "web" }));
  await client.create(cm("db", { app: "db" }));
  await client.create(cm("skip-me", { app: "web" }));
  await client.create(cm("w2", { app: "web" }));
  await eventually(() => seen.length === 2, "two matching adds");
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, ["add w1", "add w2"]);
});

Deno.test("generationChanged() passes spec changes only", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  const DEPLOY = { apiVersion: "apps/v1", kind: "Deployment" };
  await client.create({
    ...DEPLOY,
    metadata: { name: "d", namespace: "default" },
    spec: { replicas: 1 },
  });
  const seen: string[] = [];
  await (await f.cache.watch(key("workload-1"), {
    name: "deployments",
    kind: DEPLOY,
    predicates: [predicates.generationChanged()],
    handler: (e) => void seen.push(`${e.type} gen=${e.object.metadata!.generation}`),
  })).synced;
  const at = { namespace: "default", name: "d" };
  await client.patch(DEPLOY, at, { type: "merge", patch: { metadata: { labels: { a: "b" } } } });
  await client.patch(DEPLOY, at, { type: "merge", patch: { spec: { replicas: 2 } } });
  await eventually(() => seen.length === 2, "the add and the spec change");
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, ["add gen=1", "update gen=2"]);
});

Deno.test("an async handler holds back later events of its watch; a throwing handler does not stop the watch", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  const order: string[] = [];
  let active = 0;
  let maxActive = 0;
  await (await f.cache.watch(key("workload-1"), {
    name: "slow",
    kind: CM,
    handler: async (e) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 20));
      active--;
      order.push(e.object.metadata!.name!);
      if (e.object.metadata!.name === "b") throw new Error("handler failure");
    },
  })).synced;
  for (const name of ["a", "b", "c", "d"]) await client.create(cm(name));
  await eventually(() => order.length === 4, "all four events");
  assert.deepEqual(order, ["a", "b", "c", "d"]);
  assert.equal(maxActive, 1);
});

Deno.test("a handler that falls behind pauses its watch: the worker holds changes merged per object, nothing is lost", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  const names = Array.from({ length: 100 }, (_, i) => `c${i}`);
  for (const name of names) server.store.create(type, cm(name, {}, { v: "0" }));
  const released = Promise.withResolvers<void>();
  let received = 0;
  const latest = new Map<string, string>();
  await (await f.cache.watch(key("workload-1"), {
    name: "slow",
    kind: CM,
    handler: (e) => {
      received++;
      latest.set(e.object.metadata!.name!, (e.object as { data?: { v?: string } }).data?.v ?? "");
      return received === names.length + 1 ? released.promise : undefined; // stuck on the first change
    },
  })).synced;
  // 15,000 changes while the handler is stuck: more than the backlog may hold.
  const rounds = 150;
  for (let round = 1; round <= rounds; round++) {
    for (const name of names) {
      const current = server.store.get(type, "default", name)!;
      server.store.update(type, { ...current, data: { v: String(round) } });
    }
    if (round % 10 === 0) await new Promise((r) => setTimeout(r, 20)); // let the stream flow
  }
  await new Promise((r) => setTimeout(r, 500));
  released.resolve();
  await eventually(
    () => names.every((name) => latest.get(name) === String(rounds)),
    "every object's latest state to arrive",
    30_000,
  );
  const changes = names.length * rounds;
  assert.ok(
    received < names.length + changes,
    `${received} events for ${changes} changes: held changes were merged`,
  );
});

Deno.test("watch() resolves once registered; a second watch() with the name shares the first's sync, failure too", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const BOGUS = { apiVersion: "example.com/v1", kind: "Bogus" };
  const input = { name: "bogus", kind: BOGUS, handler: () => {} };
  const [first, second] = await Promise.all([
    f.cache.watch(key("workload-1"), input),
    f.cache.watch(key("workload-1"), input),
  ]);
  const noKind = (e: Error) => e instanceof ClusterCacheError && e.code === "NoKindMatch";
  await assert.rejects(first.synced, noKind);
  await assert.rejects(second.synced, noKind, "the second learns that the first failed");
  // The name is free again: a new watch() tries anew.
  const third = await f.cache.watch(key("workload-1"), input);
  assert.notEqual(third.synced, first.synced);
  await assert.rejects(third.synced, noKind);
});

Deno.test("a watch handle stops its handler; the name can be watched again", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  const seen: string[] = [];
  {
    using handle = await f.cache.watch(key("workload-1"), {
      name: "scoped",
      kind: CM,
      handler: (e) => void seen.push(e.object.metadata!.name!),
    });
    await handle.synced;
    await client.create(cm("during"));
    await eventually(() => seen.includes("during"), "the event while watching");
  } // disposed here
  await client.create(cm("after"));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!seen.includes("after"), "no event after stop");
  const again = await f.cache.watch(key("workload-1"), {
    name: "scoped",
    kind: CM,
    handler: (e) => void seen.push(`again ${e.object.metadata!.name}`),
  });
  await again.synced;
  assert.ok(seen.includes("again after"), "the name was free: a new watch with its initial adds");
  again.stop();
});

Deno.test("a watch handle's done resolves when the watch ends: stopped, or its Cluster deleted", async () => {
  await using f = await fixture({ clusters: 2 });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const watch = (name: string) =>
    f.cache.watch(key(name), { name: "cms", kind: CM, handler: () => {} });
  const stopped = await watch("workload-1");
  const deleted = await watch("workload-2");
  await Promise.all([stopped.synced, deleted.synced]);
  let doneStopped = false;
  let doneDeleted = false;
  void stopped.done.then(() => doneStopped = true);
  void deleted.done.then(() => doneDeleted = true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(doneStopped || doneDeleted, false, "both watches live");
  stopped.stop();
  await stopped.done;
  await f.fleet.removeCluster("workload-2");
  await eventually(() => doneDeleted, "the deleted Cluster's watch to end");
});

Deno.test("synced resolves once the handler has been given every existing object, more of them than the window", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  const count = 3_000; // about three windows (1,024)
  for (let i = 0; i < count; i++) server.store.create(type, cm(`c${i}`));
  const seen = new Set<string>();
  await (await f.cache.watch(key("workload-1"), {
    name: "many",
    kind: CM,
    handler: (e) => void seen.add(e.object.metadata!.name!),
  })).synced;
  assert.equal(seen.size, count, "every existing object reached the handler before synced");
});

Deno.test("synced waits for an async handler to get through the existing objects, however long past the sync timeout", async () => {
  // The watch call's timeout covers the informer's sync: 2 s + the client's 2 s + 1 s here.
  const syncMs = 2_000 + 2_000 + 1_000;
  await using f = await fixture({ clusters: 1 }, { initialSyncTimeoutMs: 2_000 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  const count = 5;
  for (let i = 0; i < count; i++) await client.create(cm(`slow-${i}`));
  let handled = 0;
  const started = performance.now();
  // The handler holds its first object past the call's timeout, then gets through the rest.
  const held = new Promise<void>((resolve) => setTimeout(resolve, syncMs + 500));
  await (await f.cache.watch(key("workload-1"), {
    name: "slow",
    kind: CM,
    handler: async () => {
      if (handled === 0) await held;
      handled++;
    },
  })).synced;
  assert.equal(handled, count, "the async handler finished every existing object before synced");
  assert.ok(performance.now() - started >= syncMs, "past the watch call's timeout");
});

Deno.test("a watch stopped while its handler works through the existing objects: synced resolves; its connection gone: synced fails", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  for (let i = 0; i < 30; i++) await client.create(cm(`o-${i}`));
  // Both handlers hold on their third object until the test is done.
  const gate = Promise.withResolvers<void>();
  let stoppedSeen = 0;
  const stopped = await f.cache.watch(key("workload-1"), {
    name: "stopped",
    kind: CM,
    handler: async () => {
      if (++stoppedSeen === 3) await gate.promise;
    },
  });
  let goneSeen = 0;
  const gone = await f.cache.watch(key("workload-1"), {
    name: "gone",
    kind: CM,
    handler: async () => {
      if (++goneSeen === 3) await gate.promise;
    },
  });
  try {
    await eventually(() => stoppedSeen === 3 && goneSeen === 3, "both handlers to hold");
    stopped.stop();
    await stopped.synced; // a stopped watch's sync is no failure
    await f.fleet.cluster("workload-1").rotateCredentials(); // connects anew: the old watches end
    await assert.rejects(gone.synced, ClusterNotConnectedError);
    await gone.done;
  } finally {
    gate.resolve();
  }
});

Deno.test("a watch whose handler is still on the existing objects when the cache closes: synced fails with Closed", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  await f.cache.getClient(key("workload-1")).create(cm("held"));
  const gate = Promise.withResolvers<void>();
  const handle = await f.cache.watch(key("workload-1"), {
    name: "closing",
    kind: CM,
    handler: () => gate.promise,
  });
  try {
    await f.cache.close();
    await assert.rejects(
      handle.synced,
      (e) => e instanceof ClusterCacheError && e.code === "Closed",
    );
  } finally {
    gate.resolve();
  }
});
