import assert from "node:assert/strict";
import { ClusterNotConnectedError, isConflict, isNotFound } from "../mod.ts";
import { FakeClient, FakeClusterCache } from "../testing/mod.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const cluster = { namespace: "default", name: "workload-1" };

Deno.test("FakeClient has API server semantics: versions, conflicts, selectors, patches, finalizers", async () => {
  const client = new FakeClient({
    objects: [{
      ...CM,
      metadata: { name: "a", namespace: "team", labels: { app: "web" } },
      data: { x: "1" },
    }],
  });
  const a = await client.get(CM, { namespace: "team", name: "a" });
  assert.equal(a.kind, "ConfigMap");
  assert.ok(a.metadata!.uid);
  await client.update({ ...a, data: { x: "2" } });
  await assert.rejects(client.update({ ...a, data: { x: "3" } }), (e: Error) => isConflict(e));
  assert.equal((await client.list(CM, { labelSelector: "app=web" })).items.length, 1);
  assert.equal((await client.list(CM, { labelSelector: "app=db" })).items.length, 0);
  const patched = await client.patch(CM, { namespace: "team", name: "a" }, {
    type: "merge",
    patch: { data: { y: "1" } },
  });
  assert.deepEqual(patched.data, { x: "2", y: "1" });
  await client.create({ ...CM, metadata: { name: "f", namespace: "team", finalizers: ["keep"] } });
  await client.delete(CM, { namespace: "team", name: "f" });
  assert.ok((await client.get(CM, { namespace: "team", name: "f" })).metadata!.deletionTimestamp);
  await client.delete(CM, { namespace: "team", name: "a" });
  await assert.rejects(
    client.get(CM, { namespace: "team", name: "a" }),
    (e: Error) => isNotFound(e),
  );
  await assert.rejects(
    client.list({ apiVersion: "example.com/v1", kind: "Widget" }),
    /no matches for kind/,
  );
});

Deno.test("FakeClient knows extra kinds when told", async () => {
  const client = new FakeClient({
    kinds: [{ apiVersion: "example.com/v1", kind: "Widget", namespaced: false }],
  });
  await client.create({
    apiVersion: "example.com/v1",
    kind: "Widget",
    metadata: { name: "w" },
    spec: { size: 1 },
  });
  assert.equal(
    (await client.list({ apiVersion: "example.com/v1", kind: "Widget" })).items.length,
    1,
  );
});

Deno.test("FakeClusterCache serves one connected cluster, pre-seeded watches and triggered events", async () => {
  const client = new FakeClient();
  const cache = new FakeClusterCache(client, cluster, { watches: ["nodes"] });
  assert.equal(cache.getUncachedClient(cluster), client);
  assert.deepEqual(cache.clusters(), [cluster]);
  assert.equal(cache.getConnectionState(cluster).connected, true);
  assert.throws(
    () => cache.getClient({ namespace: "default", name: "other" }),
    ClusterNotConnectedError,
  );
  assert.ok(cache.getHealthCheckingState(cluster).lastProbeSuccessTime > 0);
  await (await cache.watch(cluster, {
    name: "pods",
    kind: { apiVersion: "v1", kind: "Pod" },
    handler: () => {},
  })).synced;
  assert.deepEqual([...cache.watches].sort(), ["nodes", "pods"]);
  const source = cache.getClusterSource("c", (c) => [c.metadata!.name!]);
  const seen: string[] = [];
  source.subscribe((r, e) => seen.push(`${r} ${e.reasons.join("+")}`));
  assert.deepEqual(seen, ["workload-1 connect"], "the connected cluster, at once");
  cache.trigger(["disconnect"]);
  assert.deepEqual(seen, ["workload-1 connect", "workload-1 disconnect"]);
  assert.equal(cache.getConnectionState(cluster).connected, false);
  assert.throws(() => cache.getReader(cluster), ClusterNotConnectedError);
  assert.deepEqual(cache.watches, [], "a disconnect ends the connection's watches");
  cache.trigger(["connect"]);
  assert.equal(cache.getConnectionState(cluster).connected, true);
  assert.throws(() => cache.getRESTConfig(cluster), /no restConfig/);
  source.close();
});

Deno.test("FakeClusterCache refuses what the real cache refuses: its sources and watches are checked by the same code", async () => {
  const cache = new FakeClusterCache(new FakeClient(), cluster);
  assert.throws(() => cache.getClusterSource(""), TypeError);
  assert.throws(
    () => cache.getClusterSource("c", "not a function" as unknown as () => unknown[]),
    TypeError,
  );
  assert.throws(
    () => cache.getClusterSource("c", undefined, { watchForProbeFailure: [0] }),
    RangeError,
  );
  await assert.rejects(
    cache.watch(cluster, { name: "", kind: CM, handler: () => {} }),
    TypeError,
  );
  await assert.rejects(
    cache.watch(cluster, {
      name: "cms",
      kind: { apiVersion: "v1", kind: "" },
      handler: () => {},
    }),
    TypeError,
  );
  await assert.rejects(
    cache.watch(cluster, {
      name: "cms",
      kind: CM,
      handler: () => {},
      predicates: [{ labelSelector: "a in (" }],
    }),
    TypeError,
  );
  await assert.rejects(
    cache.watch({ namespace: "default", name: "other" }, {
      name: "x",
      kind: CM,
      handler: () => {},
    }),
    (e: Error) =>
      e instanceof ClusterNotConnectedError &&
      e.message ===
        "error creating watch x for v1 ConfigMap: connection to the workload cluster is down",
  );
});

Deno.test("FakeClusterCache delivers as the real cache: in order, one at a time, a failing handler does not stop the rest", async () => {
  const client = new FakeClient();
  const cache = new FakeClusterCache(client, cluster);
  const seen: string[] = [];
  let running = 0;
  const handle = await cache.watch(cluster, {
    name: "cms",
    kind: CM,
    handler: async (event) => {
      assert.equal(running++, 0, "one event at a time");
      await new Promise((r) => setTimeout(r, 1));
      running--;
      if (event.object.metadata!.name === "b") throw new Error("handler failed");
      seen.push(`${event.type} ${event.object.metadata!.name}`);
    },
  });
  await handle.synced;
  for (const name of ["a", "b", "c"]) {
    await client.create({ ...CM, metadata: { namespace: "default", name } });
  }
  await cache.settled();
  assert.deepEqual(seen, ["add a", "add c"]);
  handle.stop();
  await handle.done;
});

Deno.test("FakeClusterCache: synced waits for the handler's existing objects, is shared by a second watch() of the name, and fails on a disconnect", async () => {
  const client = new FakeClient({
    objects: [{ ...CM, metadata: { name: "a", namespace: "team" } }],
  });
  const cache = new FakeClusterCache(client, cluster);
  const gate = Promise.withResolvers<void>();
  const first = await cache.watch(cluster, {
    name: "cms",
    kind: CM,
    handler: () => gate.promise,
  });
  const second = await cache.watch(cluster, { name: "cms", kind: CM, handler: () => {} });
  assert.equal(second.synced, first.synced, "the first watch's sync, shared");
  let settled = false;
  first.synced.then(() => settled = true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(settled, false, "the handler is still on the existing object");
  gate.resolve();
  await first.synced;

  const held = Promise.withResolvers<void>();
  const pending = await cache.watch(cluster, {
    name: "pending",
    kind: CM,
    handler: () => held.promise,
  });
  cache.trigger(["disconnect"]);
  await assert.rejects(pending.synced, ClusterNotConnectedError);
  held.resolve();
});
