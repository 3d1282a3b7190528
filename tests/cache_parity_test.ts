/**
 * One suite, two caches: the fake of `./testing` and a real ClusterCache over the simulator must give
 * a controller the same answers (cached selectors, scope, errors, paging, watch events, connection).
 */
import assert from "node:assert/strict";
import {
  type ClusterCacheApi,
  ClusterCacheError,
  type KubeObject,
  KubernetesApiError,
  NodeProviderIDIndex,
  type ObjectKey,
  predicates,
  type WatchEvent,
} from "../mod.ts";
import { FakeClient, FakeClusterCache } from "../testing/mod.ts";
import { eventually, fixture } from "./helpers/fixture.ts";

const NS = "parity";
const CM = { apiVersion: "v1", kind: "ConfigMap" } as const;
const POD = { apiVersion: "v1", kind: "Pod" } as const;
const NODE = { apiVersion: "v1", kind: "Node" } as const;

/** What a read gave: names, or the error's class, code and reason. */
async function outcome(read: () => Promise<KubeObject | { items: KubeObject[] }>): Promise<string> {
  try {
    const result = await read();
    const items: KubeObject[] = "items" in result ? result.items as KubeObject[] : [result];
    return items.map((o) => o.metadata?.name).join(",");
  } catch (error) {
    if (error instanceof ClusterCacheError) return `ClusterCacheError ${error.code}`;
    if (error instanceof KubernetesApiError) {
      return `KubernetesApiError ${error.code} ${error.reason}: ${error.message}`;
    }
    throw error;
  }
}

/** Runs every case against `cache`; returns what each gave, by case. */
async function suite(cache: ClusterCacheApi, cluster: ObjectKey): Promise<Record<string, string>> {
  const live = cache.getUncachedClient(cluster);
  await live.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  await live.create({
    ...NODE,
    metadata: { name: "parity-node" },
    spec: { providerID: "parity://node-1" },
  });
  for (const [name, app] of [["a", "web"], ["b", "web"], ["c", "db"]] as const) {
    await live.create({ ...CM, metadata: { namespace: NS, name, labels: { app } } });
  }
  await live.create({
    ...POD,
    metadata: { namespace: NS, name: "p" },
    spec: { nodeName: "parity-node", containers: [{ name: "c", image: "busybox" }] },
  });

  const reader = cache.getReader(cluster);
  const listCMs = (options = {}) => reader.list(CM, { namespace: NS, ...options });
  await eventually(
    async () =>
      (await listCMs()).items.length === 3 &&
      (await reader.list(POD, { namespace: NS })).items.length === 1,
    "the cache to hold the created objects",
  );

  const results: Record<string, string> = {};
  results["index: Node by spec.providerID"] = await outcome(() =>
    reader.list(NODE, { fieldSelector: "spec.providerID=parity://node-1" })
  );
  results["no index: Pods by spec.nodeName"] = await outcome(() =>
    reader.list(POD, { namespace: NS, fieldSelector: "spec.nodeName=parity-node" })
  );
  results["live: Pods by spec.nodeName"] = await outcome(() =>
    live.list(POD, { namespace: NS, fieldSelector: "spec.nodeName=parity-node" })
  );
  results["metadata.name"] = await outcome(() => listCMs({ fieldSelector: "metadata.name=b" }));
  results["!= is not served"] = await outcome(() => listCMs({ fieldSelector: "metadata.name!=b" }));
  results["labels"] = await outcome(() => listCMs({ labelSelector: "app=web" }));
  results["cluster-scoped get ignores the namespace"] = await outcome(() =>
    reader.get(NODE, { namespace: NS, name: "parity-node" })
  );
  results["missing"] = await outcome(() => reader.get(CM, { namespace: NS, name: "nope" }));
  const pages: string[] = [];
  let token: string | undefined;
  do {
    const page = await listCMs({ limit: 2, ...(token ? { continue: token } : {}) });
    pages.push(page.items.map((o) => o.metadata?.name).join(","));
    token = page.metadata?.continue;
  } while (token);
  results["pages of 2"] = pages.join(" | ");
  results["bad continue"] = await outcome(() => listCMs({ limit: 1, continue: "bogus" }));
  results["connected"] = String(cache.getConnectionState(cluster).connected);
  results["clusters"] = cache.clusters().map((c) => `${c.namespace}/${c.name}`).join(",");

  // A watch: existing objects as adds, then the writes, through a pushed-down label filter.
  const events: string[] = [];
  const handle = await cache.watch<KubeObject>(cluster, {
    name: "parity-configmaps",
    kind: CM,
    predicates: [predicates.labelSelector("app=web"), predicates.resourceVersionChanged()],
    handler: (event: WatchEvent) => {
      if (event.object.metadata?.namespace === NS) {
        events.push(`${event.type} ${event.object.metadata.name}`);
      }
    },
  });
  await handle.synced;
  results["watch: initial"] = [...events].sort().join(",");
  events.length = 0;
  await live.create({ ...CM, metadata: { namespace: NS, name: "d", labels: { app: "web" } } });
  await live.create({ ...CM, metadata: { namespace: NS, name: "e", labels: { app: "db" } } });
  await live.patch(CM, { namespace: NS, name: "a" }, {
    type: "merge",
    patch: { data: { x: "1" } },
  });
  await live.delete(CM, { namespace: NS, name: "b" });
  await eventually(() => events.length >= 3, "the watch events");
  results["watch: changes"] = events.join(",");
  handle.stop();
  return results;
}

Deno.test("the fake and the real cache give a controller the same answers", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  const fake = await suite(
    new FakeClusterCache(new FakeClient(), cluster, { cache: { indexes: [NodeProviderIDIndex] } }),
    cluster,
  );
  await using f = await fixture({ clusters: 1 }, { cache: { indexes: [NodeProviderIDIndex] } });
  await f.connected("workload-1");
  const real = await suite(f.cache, cluster);
  assert.deepEqual(fake, real);
  // And the answers are the ones a controller should get, not merely equal.
  assert.deepEqual(real, {
    "index: Node by spec.providerID": "parity-node",
    "no index: Pods by spec.nodeName": "ClusterCacheError NotIndexed",
    "live: Pods by spec.nodeName": "p",
    "metadata.name": "b",
    "!= is not served": "ClusterCacheError NotIndexed",
    "labels": "a,b",
    "cluster-scoped get ignores the namespace": "parity-node",
    "missing": 'KubernetesApiError 404 NotFound: configmaps "nope" not found',
    "pages of 2": "a,b | c",
    "bad continue": real["bad continue"],
    "connected": "true",
    "clusters": "default/workload-1",
    "watch: initial": "add a,add b",
    "watch: changes": "add d,update a,delete b",
  });
  assert.match(real["bad continue"]!, /^KubernetesApiError 400 BadRequest/);
});
