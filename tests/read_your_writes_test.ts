import assert from "node:assert/strict";
import type { Client, ClusterCacheApi, KubeObject, ObjectKey } from "../mod.ts";
import { Controller } from "../src/main/controller/mod.ts";
import { MetricsRegistry } from "../src/main/metrics/mod.ts";
import { FakeClient, FakeClusterCache } from "../testing/mod.ts";
import { fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

/**
 * A controller that creates one ConfigMap per run, up to `total`, and asks to run again at once,
 * counting the runs that read a cache without what the earlier runs created.
 */
async function createAndRequeue(
  cache: ClusterCacheApi,
  cluster: ObjectKey,
  label: string,
  readYourWrites: boolean,
  metrics?: MetricsRegistry,
  total = 5,
): Promise<{ stale: number; runs: number }> {
  let created = 0;
  let stale = 0;
  let runs = 0;
  const finished = Promise.withResolvers<void>();
  await using controller = new Controller<ObjectKey>({
    name: label,
    readYourWrites,
    ...(metrics ? { metrics } : {}),
    reconcile: async (request) => {
      runs++;
      const client: Client = cache.getClient(request);
      const seen = await client.list(CM, { namespace: "default", labelSelector: `app=${label}` });
      if (seen.items.length < created) stale++;
      if (created === total) {
        finished.resolve();
        return;
      }
      await client.create({
        ...CM,
        metadata: { namespace: "default", name: `${label}-${created}`, labels: { app: label } },
      });
      created++;
      return { requeueAfterMs: 1 };
    },
  });
  controller.enqueue(cluster);
  controller.start();
  await finished.promise;
  return { stale, runs };
}

Deno.test("read-your-writes: a reconcile requeued at once never reads a cache older than its own writes; without it, it does", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cluster = key("workload-1");
  await f.cache.getReader(cluster).list(CM); // the ConfigMap informer runs and is synced
  // The API server's watch cache trails its writes by 300 ms.
  f.fleet.cluster("workload-1").setFaults({ watchLagMs: 300 });

  const without = await createAndRequeue(f.cache, cluster, "off", false);
  assert.ok(without.stale > 0, `a stale cache was expected without read-your-writes: ${without}`);

  const registry = new MetricsRegistry();
  const withIt = await createAndRequeue(f.cache, cluster, "on", true, registry);
  assert.equal(withIt.stale, 0, "every run saw what the runs before it wrote");
  assert.equal(withIt.runs, 6, "the runs that waited did not run the reconcile");
  assert.match(
    await registry.metrics(),
    /clustercache_stale_cache_skips_total\{controller="on",kind="v1 ConfigMap"\} [1-9]/,
  );
});

Deno.test("read-your-writes with the fake cache: a paused cache holds the next run back until it catches up", async () => {
  const cluster = key("workload-1");
  const cache = new FakeClusterCache(new FakeClient(), cluster);
  await cache.pauseCache(CM);
  const seen: number[] = [];
  let first = true;
  await using controller = new Controller<ObjectKey>({
    name: "fake",
    reconcile: async (request) => {
      const client = cache.getClient(request);
      seen.push((await client.list(CM)).items.length);
      if (first) {
        first = false;
        await client.create({ ...CM, metadata: { namespace: "default", name: "made" } });
        return { requeueAfterMs: 1 };
      }
    },
  });
  controller.enqueue(cluster);
  controller.start();
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(seen, [0], "the second run waits: the cache has not seen the create");
  cache.resumeCache(CM);
  await controller.idle();
  assert.deepEqual(seen, [0, 1]);
});

/** A client whose resourceVersions are opaque strings, as servers other than etcd's may give. */
class OpaqueVersions extends FakeClient {
  static #opaque<T extends KubeObject>(object: T): T {
    const rv = object.metadata?.resourceVersion;
    return rv
      ? { ...object, metadata: { ...object.metadata, resourceVersion: `v-${rv}` } }
      : object;
  }
  override async create<T extends KubeObject = KubeObject>(object: NoInfer<T>): Promise<T> {
    return OpaqueVersions.#opaque(await super.create<T>(object));
  }
  override async list<T extends KubeObject = KubeObject>(
    ...args: Parameters<FakeClient["list"]>
  ) {
    const list = await super.list<T>(...args);
    const rv = list.metadata?.resourceVersion;
    return { ...list, metadata: { ...list.metadata, resourceVersion: `v-${rv}` } };
  }
}

Deno.test("read-your-writes fails open on a server whose resourceVersions are opaque: it reconciles", async () => {
  const cluster = key("workload-1");
  const cache = new FakeClusterCache(new OpaqueVersions(), cluster);
  await cache.pauseCache(CM); // the cache would be behind, if anyone could tell
  const registry = new MetricsRegistry();
  const { runs } = await createAndRequeue(cache, cluster, "opaque", true, registry, 3);
  assert.equal(runs, 4);
  assert.doesNotMatch(await registry.metrics(), /clustercache_stale_cache_skips_total\{/);
});
