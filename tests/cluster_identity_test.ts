import assert from "node:assert/strict";
import { eventually, fixture, key } from "./helpers/fixture.ts";

Deno.test("a Cluster deleted and created again under the same name is a new cluster: never served from the old connection", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cluster = key("workload-1");
  const reasons: string[] = [];
  const source = f.cache.getClusterSource("identity", (c) => [c.metadata!.uid!]);
  const uids: string[] = [];
  source.subscribe((uid, event) => {
    uids.push(uid);
    reasons.push(...event.reasons);
  });
  const keyBefore = await f.cache.getClientCertificatePrivateKey(cluster);
  const watch = await f.cache.watch(cluster, {
    name: "configmaps",
    kind: { apiVersion: "v1", kind: "ConfigMap" },
    handler: () => {},
  });
  await watch.synced;

  // Same name, same kubeconfig Secret, a new UID: between two reconciles of the cluster.
  f.fleet.recreateClusterObject("workload-1");

  let ended = false;
  void watch.done.then(() => ended = true);
  await eventually(() => ended, "the old connection's watch to end");
  // Sources hear of the new cluster (after a disconnect of the old one when one reconcile saw
  // both the delete and the create; a reconcile that saw the delete alone forgets the cluster
  // first, as Cluster API does, with no event).
  await eventually(() => reasons.slice(1).includes("connect"), "a connect of the new cluster");
  assert.equal(f.cache.getConnectionState(cluster).connected, true);
  assert.notEqual(uids.at(-1), uids[0], "the map function saw the new Cluster");
  const keyAfter = await f.cache.getClientCertificatePrivateKey(cluster);
  assert.notEqual(keyAfter, keyBefore, "nothing of the old cluster is kept, not even its key");
  source.close();
});

Deno.test("a Cluster created again whose infrastructure is not ready yet: its sources still hear the old one disconnect", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cluster = key("workload-1");
  const reasons: string[][] = [];
  const source = f.cache.getClusterSource("identity", (c) => [c.metadata!.name!]);
  source.subscribe((_request, event) => void reasons.push([...event.reasons]));
  await eventually(() => reasons.length === 1, "the connect event");
  f.fleet.recreateClusterObject("workload-1", { infrastructureReady: false });
  await eventually(() => !f.cache.getConnectionState(cluster).connected, "the old one to go");
  await eventually(() => reasons.length === 2, "a disconnect for the old one", 5_000);
  assert.deepEqual(reasons[1], ["disconnect"]);
  source.close();
});
