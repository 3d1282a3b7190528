import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, predicates } from "../mod.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, fixture, key } from "./helpers/fixture.ts";

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
  // With data: managedFields record owned fields, and a bare ConfigMap owns none.
  await client.create({ ...CM, metadata: { name: "m", namespace: "default" }, data: { a: "1" } }, {
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

Deno.test("a transform module may import its relative dependencies under least-privilege workers", async () => {
  await using f = await fixture({ clusters: 1 }, {
    workerPermissions: "least",
    cache: {
      byObject: [{
        kind: CM,
        transform: {
          module: new URL("./fixtures/transform_with_dep/transform.ts", import.meta.url).href,
          export: "mark",
        },
      }],
    },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "x", namespace: "default" },
  });
  const reader = f.cache.getReader(key("workload-1"));
  await eventually(async () => (await reader.list(CM)).items.length === 1, "the ConfigMap");
  const [cached] = (await reader.list(CM)).items;
  assert.equal(cached!.metadata!.labels!.mark, "from-a-relative-import");
});

Deno.test("cache options are checked at setup: a bad module URL names the option, no connect tried", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 1 });
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  for (
    const [cache, message] of [
      [
        { defaultTransform: { module: "./relative.ts", export: "f" } },
        /options\.cache\.defaultTransform\.module must be an absolute URL/,
      ],
      [
        { byObject: [{ kind: CM, transform: { module: "ftp://x/y.js", export: "f" } }] },
        /options\.cache\.byObject\[0\]\.transform\.module must be a file:, https: or data: URL/,
      ],
      [
        { indexes: [{ kind: CM, field: "", extract: { fieldPath: "a" } }] },
        /options\.cache\.indexes\[0\]\.field/,
      ],
      [
        { indexes: [{ kind: CM, field: "x", extract: { module: "file:///x.ts" } }] },
        /options\.cache\.indexes\[0\]\.extract must be \{ module, export \}/,
      ],
    ] as const
  ) {
    await assert.rejects(
      ClusterCache.setup({ ...FAST, management, cache: cache as never }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
    );
  }
});
