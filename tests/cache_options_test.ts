import assert from "node:assert/strict";
import { predicates } from "../mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

Deno.test("byObject selectors restrict what the cache holds for a kind", async () => {
  await using f = await fixture({ clusters: 1 }, {
    cache: { byObject: [{ kind: CM, labelSelector: "cache=yes" }] },
  });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await client.create({
    ...CM,
    metadata: { name: "in", namespace: "default", labels: { cache: "yes" } },
  });
  await client.create({ ...CM, metadata: { name: "out", namespace: "default" } });
  const cached = await client.list(CM);
  assert.deepEqual(cached.items.map((o) => o.metadata!.name), ["in"]);
  const live = await f.cache.getUncachedClient(key("workload-1")).list(CM);
  assert.deepEqual(live.items.map((o) => o.metadata!.name).sort(), ["in", "out"]);
});

Deno.test("the stripManagedFields default transform drops managedFields from cached objects only", async () => {
  await using f = await fixture({ clusters: 1 }, {
    cache: { defaultTransform: "stripManagedFields" },
  });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await client.create({ ...CM, metadata: { name: "m", namespace: "default" } }, {
    fieldManager: "tests",
  });
  const live = await f.cache.getUncachedClient(key("workload-1")).get(CM, {
    namespace: "default",
    name: "m",
  });
  assert.equal((live.metadata!.managedFields as { manager: string }[])[0]!.manager, "tests");
  await eventually(
    async () => (await client.list(CM)).items.length === 1,
    "the cache to see the object",
  );
  const cached = await client.get(CM, { namespace: "default", name: "m" });
  assert.equal(cached.metadata!.managedFields, undefined);
});

Deno.test("syncPeriodMs re-delivers cached objects as updates; resourceVersionChanged() filters them", async () => {
  await using f = await fixture({ clusters: 1 }, { cache: { syncPeriodMs: 100 } });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await client.create({ ...CM, metadata: { name: "r", namespace: "default" } });
  let resyncs = 0;
  let filtered = 0;
  await (await f.cache.watch(key("workload-1"), {
    name: "all",
    kind: CM,
    handler: (e) => {
      if (
        e.type === "update" &&
        e.object.metadata!.resourceVersion === e.oldObject.metadata!.resourceVersion
      ) resyncs++;
    },
  })).synced;
  await (await f.cache.watch(key("workload-1"), {
    name: "changes",
    kind: CM,
    predicates: [predicates.resourceVersionChanged()],
    handler: (e) => void (e.type === "update" && filtered++),
  })).synced;
  await eventually(() => resyncs >= 3, "three resyncs");
  assert.equal(filtered, 0);
});
