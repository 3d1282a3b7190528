import assert from "node:assert/strict";
import { ConsistencyStore } from "../src/main/controller/consistency.ts";
import type { CacheWrite } from "../src/main/cache_writes.ts";
import { ListBudget } from "../src/main/sessions/list_budget.ts";
import { shouldSendEvent } from "../src/main/sources/source_events.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

function write(resourceVersion: string, cache: () => string | undefined, kind = CM): CacheWrite {
  return {
    cluster: "default/workload-1",
    kind,
    resourceVersion,
    cacheVersion: () => Promise.resolve(cache()),
  };
}

Deno.test("read-your-writes: a request waits while its cluster's cache is older than its own write, then runs", async () => {
  const store = new ConsistencyStore(10_000);
  let cache = "10";
  store.wrote("a", write("12", () => cache));
  assert.deepEqual(await store.check("a", 0), { ready: false, kind: "v1 ConfigMap" });
  cache = "12";
  assert.deepEqual(await store.check("a", 50), { ready: true });
  assert.equal(store.size, 0, "a write seen is forgotten");
  assert.deepEqual(await store.check("b", 0), { ready: true }, "a request that wrote nothing runs");
});

Deno.test("read-your-writes: the newest write of a kind is the one waited for", async () => {
  const store = new ConsistencyStore(10_000);
  let cache = "15";
  store.wrote("a", write("20", () => cache));
  store.wrote("a", write("14", () => cache)); // older: does not lower the bar
  assert.equal((await store.check("a", 0)).ready, false);
  cache = "20";
  assert.equal((await store.check("a", 0)).ready, true);
});

Deno.test("read-your-writes fails open: opaque versions, a cache that cannot say, a cache without the kind", async () => {
  const store = new ConsistencyStore(10_000);
  store.wrote("opaque", write("etag-2", () => "etag-1"));
  assert.deepEqual(await store.check("opaque", 0), { ready: true });
  store.wrote("gone", {
    ...write("5", () => "1"),
    cacheVersion: () => Promise.reject(new Error("x")),
  });
  assert.deepEqual(await store.check("gone", 0), { ready: true });
  store.wrote("none", write("5", () => undefined));
  assert.deepEqual(await store.check("none", 0), { ready: true });
});

Deno.test("read-your-writes gives up after its bound and says so", async () => {
  const store = new ConsistencyStore(1_000);
  store.wrote("a", write("9", () => "3"));
  assert.equal((await store.check("a", 100)).ready, false);
  assert.equal((await store.check("a", 900)).ready, false);
  assert.deepEqual(await store.check("a", 1_100), {
    ready: true,
    gaveUp: { kind: "v1 ConfigMap", waitedMs: 1_000 },
  });
  assert.equal(store.size, 0);
});

const alive = () => ({ alive: true });

Deno.test("list budget: at most `concurrency` lists at once, the next granted as one ends", () => {
  const budget = new ListBudget({ concurrency: 2, objects: 1_000_000 });
  const granted: string[] = [];
  const owners = [alive(), alive(), alive()];
  owners.forEach((owner, i) => budget.ask(owner, "v1 Pod", 10, false, () => granted.push(`${i}`)));
  assert.deepEqual(granted, ["0", "1"]);
  assert.equal(budget.stats.waiting, 1);
  budget.done(owners[0]!, "v1 Pod");
  assert.deepEqual(granted, ["0", "1", "2"]);
});

Deno.test("list budget: objects in flight are bounded, one list always may run, and reads go first", () => {
  const budget = new ListBudget({ concurrency: 10, objects: 1_000 });
  const granted: string[] = [];
  const big = alive();
  budget.ask(big, "v1 Pod", 5_000, false, () => granted.push("big")); // alone: bigger than the budget
  const small = alive();
  budget.ask(small, "v1 Pod", 100, false, () => granted.push("small"));
  const read = alive();
  budget.ask(read, "v1 Node", 100, true, () => granted.push("read"));
  assert.deepEqual(granted, ["big"]);
  budget.done(big, "v1 Pod");
  assert.deepEqual(granted, ["big", "read", "small"], "the list a read waits for goes first");
  assert.equal(budget.stats.peakObjects, 5_000);
});

Deno.test("list budget: a session that ended frees its places and loses its turn", () => {
  const budget = new ListBudget({ concurrency: 1, objects: 1_000 });
  const granted: string[] = [];
  const ended = { alive: true };
  budget.ask(ended, "v1 Pod", 10, false, () => granted.push("ended"));
  const queued = { alive: true };
  budget.ask(queued, "v1 Pod", 10, false, () => granted.push("queued-then-ended"));
  const next = alive();
  budget.ask(next, "v1 Pod", 10, false, () => granted.push("next"));
  ended.alive = false;
  queued.alive = false;
  budget.ask(alive(), "v1 Node", 10, false, () => granted.push("last"));
  assert.deepEqual(granted, ["ended", "next"]);
});

Deno.test("a kind failing past a duration is one event, once per duration, like a failing probe", () => {
  const since = 1_000_000;
  const outcome = (now: number, lastEventSent: number) => ({
    now,
    lastEventSent,
    lastProbeSuccess: now,
    transitions: [],
    failingKinds: [{ kind: "v1 Pod", since }],
  });
  assert.deepEqual(shouldSendEvent(outcome(since + 30_000, 0), [], [60_000]), []);
  assert.deepEqual(shouldSendEvent(outcome(since + 61_000, 0), [], [60_000]), [
    "watch of v1 Pod failing since more than 1m0s",
  ]);
  assert.deepEqual(
    shouldSendEvent(outcome(since + 70_000, since + 61_000), [], [60_000]),
    [],
    "told already",
  );
});
