import assert from "node:assert/strict";
import { type ClusterEvent, ClusterSource, kinds, type ObjectKey } from "../mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

Deno.test("watchForProbeFailure: one event per duration once the probe has not succeeded for longer", async () => {
  await using f = await fixture({ clusters: 1 }, {
    // A high threshold keeps the cluster connected while its probes fail.
    healthProbe: { intervalMs: 100, timeoutMs: 150, failureThreshold: 1_000 },
  });
  const short: ClusterEvent[] = [];
  const long: ClusterEvent[] = [];
  const plain: ClusterEvent[] = [];
  const a = f.cache.getClusterSource("short", (c) => [c.metadata!.name!], {
    watchForProbeFailure: [800],
  });
  const b = f.cache.getClusterSource("long", (c) => [c.metadata!.name!], {
    watchForProbeFailure: [60_000],
  });
  const c = f.cache.getClusterSource("plain", (c) => [c.metadata!.name!]);
  a.subscribe((_r, e) => short.push(e));
  b.subscribe((_r, e) => long.push(e));
  c.subscribe((_r, e) => plain.push(e));
  await f.connected("workload-1");
  await eventually(
    () => short.length === 1 && long.length === 1 && plain.length === 1,
    "the connect events",
  );
  await f.fleet.cluster("workload-1").hang(true);
  await eventually(() => short.length === 2, "the probe-failure event", 5_000);
  assert.deepEqual(short[1]!.reasons, ["health probe didn't succeed since more than 800ms"]);
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(short.length, 2, "one event, not one per reconcile");
  assert.equal(long.length, 1, "a longer duration has not passed");
  assert.equal(plain.length, 1, "a source without durations only hears connects and disconnects");
  assert.ok(f.cache.getConnectionState(key("workload-1")).connected);
  for (const s of [a, b, c]) s.close();
});

Deno.test("every getClusterSource call adds a source, even with a repeated name; each hears each connect", async () => {
  await using f = await fixture({ clusters: 2 });
  const seen: string[][] = [[], []];
  const sources = [0, 1].map((i) => {
    const s = f.cache.getClusterSource("same-name", (c) => [c.metadata!.name!]);
    s.subscribe((r) => seen[i]!.push(r));
    return s;
  });
  await f.connected("workload-1");
  await f.connected("workload-2");
  await eventually(() => seen.every((s) => s.length === 2), "both sources to hear both clusters");
  assert.deepEqual(seen.map((s) => s.sort()), [["workload-1", "workload-2"], [
    "workload-1",
    "workload-2",
  ]]);
  for (const s of sources) s.close();
});

Deno.test("a never-consumed source does not hold back the reconciler", async () => {
  await using f = await fixture({ clusters: 3 });
  const idle = f.cache.getClusterSource("nobody-reads", (c) => [c.metadata!.name!]);
  for (const name of ["workload-1", "workload-2", "workload-3"]) await f.connected(name);
  assert.equal(idle.pending, 3);
  idle.close();
});

Deno.test("a source created after clusters connected hears a connect for each of them, once", async () => {
  await using f = await fixture({ clusters: 2 });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const late = f.cache.getClusterSource("late", (c) => [c.metadata!.name!]);
  const seen: string[] = [];
  late.subscribe((r, e) => seen.push(`${r} ${e.reasons.join("+")}`));
  assert.deepEqual(seen.sort(), ["workload-1 connect", "workload-2 connect"]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(seen.length, 2, "no second connect from the next reconciles");
  late.close();
});

Deno.test("a closed source is forgotten: its mapFn no longer runs; a source made after close() ends at once", async () => {
  const f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
  });
  let mapped = 0;
  const source = f.cache.getClusterSource("short-lived", (c) => {
    mapped++;
    return [c.metadata!.name!];
  }, { watchForProbeFailure: [150] }); // a duration so every reconcile asks the source
  source.subscribe(() => {});
  await f.connected("workload-1");
  await eventually(() => mapped >= 1, "the connect event");
  source.close();
  assert.equal(source.closed, true);
  const after = mapped;
  await f.fleet.cluster("workload-1").hang(true); // probe failures: events for open sources
  const open = f.cache.getClusterSource("open", (c) => [c.metadata!.name!], {
    watchForProbeFailure: [150],
  });
  const heard: string[] = [];
  open.subscribe((_r, e) => heard.push(e.reasons.join("+")));
  await eventually(() => heard.some((r) => r.startsWith("health probe")), "a probe-failure event");
  assert.equal(mapped, after, "the closed source's mapFn did not run again");
  open.close();
  await f[Symbol.asyncDispose]();

  const late = f.cache.getClusterSource("after-close", (c) => [c]);
  assert.equal(late.closed, true);
  const items = [];
  for await (const item of late) items.push(item);
  assert.deepEqual(items, []);
});

Deno.test("a source created while a connect is being announced hears that connect once", async () => {
  await using f = await fixture({ clusters: 1 });
  const nested: string[] = [];
  let inner: ReturnType<typeof f.cache.getClusterSource<string>> | undefined;
  const outer = f.cache.getClusterSource("outer", (c) => [c.metadata!.name!]);
  outer.subscribe((_r, e) => {
    if (inner || !e.reasons.includes("connect")) return;
    // A controller that starts another one when it hears of a cluster.
    inner = f.cache.getClusterSource("inner", (c) => [c.metadata!.name!]);
    inner.subscribe((r, e2) => nested.push(`${r} ${e2.reasons.join("+")} ${e2.connected}`));
  });
  await f.connected("workload-1");
  await eventually(() => inner !== undefined, "the inner source");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(nested, ["workload-1 connect true"]);
  outer.close();
  inner!.close();
});

Deno.test("getClusterSource without a mapFn requests the Cluster's own key; keys merge whatever their field order", async () => {
  await using f = await fixture({ clusters: 2 });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const source = f.cache.getClusterSource("default-map"); // ClusterSource<ObjectKey>
  const keys: ObjectKey[] = [];
  for await (const request of source) {
    keys.push(request);
    if (keys.length === 2) break;
  }
  assert.deepEqual(keys.map((k) => `${k.namespace}/${k.name}`).sort(), [
    "default/workload-1",
    "default/workload-2",
  ]);
  // The same key, its fields in another order, is one request waiting, not two.
  const merged = new ClusterSource<ObjectKey>("merge");
  const event = { cluster: key("a"), reasons: ["connect"], connected: true, time: Date.now() };
  merged.deliver("default/a", [{ namespace: "default", name: "a" }], event);
  merged.deliver("default/a", [{ name: "a", namespace: "default" }], event);
  assert.equal(merged.pending, 1);
  merged.close();
  const nodes = await f.cache.getReader(keys[0]!).list(kinds.Node);
  assert.equal(nodes.items.length, 1);
});
