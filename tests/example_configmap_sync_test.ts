/**
 * The example operator (examples/configmap_sync) against a simulated fleet, end to end: the
 * operator runs in its own process (as deployed), follows the management ConfigMap with a real
 * client-node informer, and copies land in every workload
 * cluster, drift is repaired, new clusters get a copy, a hung cluster catches up, and deleting the
 * source deletes the copies. Plus a unit test of the reconciler with the fakes of `./testing`.
 */
import assert from "node:assert/strict";
import { FakeClient, FakeClusterCache, SimulatedFleet } from "../testing/mod.ts";
import type { KubeObject } from "../mod.ts";
import {
  type ConfigMap,
  ConfigMapSyncController,
  MANAGED_BY,
  MANAGED_BY_LABEL,
} from "../examples/configmap_sync/controller.ts";
import { eventually } from "./helpers/fixture.ts";
import { startOperator } from "./helpers/operator_process.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" } as const;

Deno.test("example operator: keeps a ConfigMap in every workload cluster in step with the management one", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 3 });
  const cmType = fleet.management.types.find((t) => t.kind === "ConfigMap")!;
  fleet.management.store.create(cmType, {
    ...CM,
    metadata: { namespace: "default", name: "fleet-settings" },
    data: { logLevel: "info" },
  });
  await using operator = await startOperator(
    fleet.managementKubeconfig(),
    "default/fleet-settings",
  );
  await operator.ready();
  const copy = (cluster: string) =>
    fleet.cluster(cluster).store.get(cmType, "default", "fleet-settings") as
      | ConfigMap
      | undefined;
  const everywhere = (check: (c: ConfigMap | undefined) => boolean) => () =>
    fleet.clusters.every((server) => check(copy(server.name)));

  await eventually(everywhere((c) => c?.data?.logLevel === "info"), "copies in all clusters");
  assert.equal(copy("workload-1")!.metadata!.labels![MANAGED_BY_LABEL], MANAGED_BY);

  // The source changes: every copy follows.
  const source = fleet.management.store.get(cmType, "default", "fleet-settings")!;
  fleet.management.store.update(cmType, {
    ...source,
    data: { logLevel: "debug", extra: "1" },
  } as KubeObject);
  await eventually(
    everywhere((c) => c?.data?.logLevel === "debug" && c.data.extra === "1"),
    "the update everywhere",
  );

  // Drift: someone edits one copy and deletes another; the watch brings both back.
  const w1 = fleet.cluster("workload-1");
  w1.store.update(cmType, { ...copy("workload-1")!, data: { logLevel: "hacked" } } as KubeObject);
  fleet.cluster("workload-2").store.delete(cmType, "default", "fleet-settings");
  await eventually(everywhere((c) => c?.data?.logLevel === "debug"), "drift repaired");

  // A new cluster joins the fleet and gets its copy.
  await fleet.addCluster("workload-4");
  await eventually(
    () => copy("workload-4")?.data?.logLevel === "debug",
    "a copy in the new cluster",
    20_000,
  );

  // A hung cluster misses an update, then catches up once it answers again.
  const w3 = fleet.cluster("workload-3");
  await w3.hang(true);
  const latest = fleet.management.store.get(cmType, "default", "fleet-settings")!;
  fleet.management.store.update(cmType, { ...latest, data: { logLevel: "warn" } } as KubeObject);
  await eventually(
    () =>
      ["workload-1", "workload-2", "workload-4"].every((n) => copy(n)?.data?.logLevel === "warn"),
    "the update in the healthy clusters",
  );
  assert.equal(copy("workload-3")?.data?.logLevel, "debug", "the hung cluster was not written");
  await new Promise((r) => setTimeout(r, 2_500)); // long enough to be declared dead (FAST probes)
  await w3.hang(false);
  await eventually(
    everywhere((c) => c?.data?.logLevel === "warn"),
    "workload-3 to catch up",
    20_000,
  );

  // A ConfigMap of that name the operator did not create (no label) is never deleted.
  const w4 = fleet.cluster("workload-4");
  const unmanaged = copy("workload-4")!;
  w4.store.update(cmType, {
    ...unmanaged,
    metadata: { ...unmanaged.metadata, labels: {} },
  } as KubeObject);

  // The source goes away: the managed copies go too.
  fleet.management.store.delete(cmType, "default", "fleet-settings");
  await eventually(
    () => ["workload-1", "workload-2", "workload-3"].every((n) => copy(n) === undefined),
    "copies deleted",
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(copy("workload-4"), "an unlabelled ConfigMap is left alone");

  // SIGTERM: a clean stop, with the outcome counts.
  const outcomes = await operator.stop();
  const why = `${JSON.stringify(outcomes)}\noperator log:\n${(await operator.log()).slice(-4000)}`;
  // Printed as well: a failure here can be hidden behind a disposal error (SuppressedError).
  if (!(outcomes.created! >= 5 && outcomes.deleted! >= 3)) console.error(why);
  assert.ok(outcomes.created! >= 5, why);
  assert.ok(outcomes.deleted! >= 3, why);
});

Deno.test("example operator: reconcile decisions, unit-tested with FakeClusterCache", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  const client = new FakeClient();
  const cache = new FakeClusterCache(client, cluster);
  await using controller = new ConfigMapSyncController(cache, {
    target: { namespace: "default", name: "settings" },
  });
  const target = { namespace: "default", name: "settings" };

  assert.equal(await controller.reconcile(cluster), "waiting-for-desired");
  controller.setDesired({ a: "1" });
  assert.equal(await controller.reconcile(cluster), "created");
  assert.deepEqual(cache.watches, [`${MANAGED_BY}/default/settings`], "the copy is watched");
  assert.equal(await controller.reconcile(cluster), "unchanged");

  controller.setDesired({ a: "2" });
  assert.equal(await controller.reconcile(cluster), "updated");
  assert.deepEqual((await client.get<ConfigMap>(CM, target)).data, { a: "2" });

  // A stale read (the copy changed since it was read) is a conflict: retried, not overwritten blindly.
  const stale = new FakeClusterCache(
    {
      ...client,
      get: client.get.bind(client),
      list: client.list.bind(client),
      create: client.create.bind(client),
      patch: client.patch.bind(client),
      delete: client.delete.bind(client),
      update: async (object) => {
        await client.patch(CM, target, { type: "merge", patch: { data: { b: "x" } } });
        return await client.update(object);
      },
    },
    cluster,
  );
  const racing = new ConfigMapSyncController(stale, { target });
  racing.setDesired({ a: "3" });
  assert.equal(await racing.reconcile(cluster), "retry");
  await racing.close();

  // Another cluster is not connected: skipped quietly, the connect event brings it back.
  assert.equal(
    await controller.reconcile({ namespace: "default", name: "elsewhere" }),
    "not-connected",
  );

  controller.setDesired(null);
  assert.equal(await controller.reconcile(cluster), "deleted");
  await assert.rejects(client.get(CM, target), /not found/);
  assert.equal(await controller.reconcile(cluster), "unchanged");
});

Deno.test("example operator: a stale cached read never deletes a copy it no longer owns", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  const target = { namespace: "default", name: "settings" };
  const client = new FakeClient();
  const labelled = await client.create<ConfigMap>({
    ...CM,
    metadata: { ...target, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    data: { a: "1" },
  });
  // Someone takes the copy over (removes our label); the cache has not seen it yet.
  await client.update<ConfigMap>({
    ...labelled,
    metadata: { ...labelled.metadata, labels: {} },
  });
  // Reads see the stale labelled version; writes go to the server.
  const staleCache = new FakeClusterCache(
    {
      ...client,
      get: () => Promise.resolve(structuredClone(labelled) as never),
      list: () =>
        Promise.resolve({
          apiVersion: "v1",
          kind: "ConfigMapList",
          metadata: {},
          items: [structuredClone(labelled) as never],
        }),
      create: client.create.bind(client),
      update: client.update.bind(client),
      patch: client.patch.bind(client),
      delete: client.delete.bind(client),
    },
    cluster,
  );
  await using controller = new ConfigMapSyncController(staleCache, { target });
  controller.setDesired(null);
  assert.equal(await controller.reconcile(cluster), "retry");
  const kept = await client.get<ConfigMap>(CM, target);
  // Still there, still unlabelled (an empty label map is not stored, as on kube-apiserver).
  assert.equal(
    kept.metadata?.labels?.[MANAGED_BY_LABEL],
    undefined,
    "the unlabelled ConfigMap is still there",
  );
});
