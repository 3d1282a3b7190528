import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, ClusterNotConnectedError } from "../mod.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, fixture, key } from "./helpers/fixture.ts";

Deno.test("connects every registered Cluster whose infrastructure is ready, and reads from it", async () => {
  await using f = await fixture({ clusters: 2 });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const nodes = await f.cache.getReader(key("workload-2")).list({ apiVersion: "v1", kind: "Node" });
  assert.deepEqual(nodes.items.map((n) => n.metadata!.name), ["workload-2-control-plane"]);
});

Deno.test("infrastructure not ready: no connect, no requeue; ready later: connects", async () => {
  await using f = await fixture();
  await f.fleet.addCluster("late", { infrastructureReady: false });
  await eventually(
    () => f.cache.clusters().some((c) => c.name === "late"),
    "the accessor to exist",
  );
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(f.cache.getConnectionState(key("late")).connected, false);
  assert.throws(() => f.cache.getClient(key("late")), ClusterNotConnectedError);
  assert.equal(
    f.cache.getHealthCheckingState(key("late")).lastProbeTime,
    0,
    "no connection was attempted",
  );
  f.fleet.setInfrastructureReady("late", true);
  await f.connected("late");
});

Deno.test("v1beta1 Clusters are followed (status.infrastructureReady) when only v1beta1 is served", async () => {
  await using f = await fixture({ clusters: 1, clusterVersions: ["v1beta1"] });
  await f.fleet.addCluster("not-ready", { infrastructureReady: false });
  await f.connected("workload-1");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(f.cache.getConnectionState(key("not-ready")).connected, false);
  f.fleet.setInfrastructureReady("not-ready", true);
  await f.connected("not-ready");
});

Deno.test("a missing kubeconfig Secret fails the connect; no retry before the interval, unless the Secret changes", async () => {
  await using f = await fixture({}, { connectionCreationRetryIntervalMs: 60_000 });
  const server = await f.fleet.addCluster("nosecret", { register: false });
  f.fleet.management.store.create(f.fleet.management.typeOf("cluster.x-k8s.io", "clusters")!, {
    apiVersion: "cluster.x-k8s.io/v1beta2",
    kind: "Cluster",
    metadata: { name: "nosecret", namespace: "default" },
    status: { initialization: { infrastructureProvisioned: true } },
  }, { keepStatus: true });
  await eventually(
    () => f.cache.getHealthCheckingState(key("nosecret")).consecutiveFailures >= 1,
    "a failed connect",
  );
  const state = f.cache.getConnectionState(key("nosecret"));
  assert.equal(
    state.lastConnectionError,
    'error creating REST config: error getting kubeconfig secret: Secret "nosecret-kubeconfig" not found',
  );
  const health = f.cache.getHealthCheckingState(key("nosecret"));
  assert.equal(health.lastProbeSuccessTime, 0, "a failed connect leaves the last success alone");
  // Reconciles that change nothing (a label on the Cluster) do not retry before the interval.
  f.fleet.setClusterLabels("nosecret", { touched: "yes" });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(f.cache.getHealthCheckingState(key("nosecret")).consecutiveFailures, 1, "no retry");
  // The Secret appears: tried at once, not after the 60 s interval.
  const fixedAt = Date.now();
  f.fleet.refreshKubeconfigSecret("nosecret");
  await f.connected("nosecret", 20_000);
  assert.ok(Date.now() - fixedAt < 20_000);
  void server;
});

Deno.test("a deleted Cluster is disconnected and forgotten: accessor, health state and source bookkeeping", async () => {
  await using f = await fixture({ clusters: 2 });
  const source = f.cache.getClusterSource("test", (c) => [c.metadata!.name!]);
  await f.connected("workload-1");
  await f.connected("workload-2");
  const client = f.cache.getClient(key("workload-1"));
  await eventually(() => source.lastEventSent("default/workload-1") > 0, "a connect event");
  await f.fleet.removeCluster("workload-1");
  await eventually(
    () => !f.cache.clusters().some((c) => c.name === "workload-1"),
    "the cluster to be forgotten",
  );
  assert.deepEqual(f.cache.getHealthCheckingState(key("workload-1")), {
    lastProbeTime: 0,
    lastProbeSuccessTime: 0,
    consecutiveFailures: 0,
  });
  assert.equal(source.lastEventSent("default/workload-1"), 0);
  await assert.rejects(client.list({ apiVersion: "v1", kind: "Node" }), ClusterNotConnectedError);
  await assert.rejects(
    f.cache.getClientCertificatePrivateKey(key("workload-1")),
    /private key was not generated yet/,
  );
  const metrics = await f.cache.metrics.registry.metrics();
  assert.ok(!metrics.includes('cluster_name="workload-1"'), "the cluster's metric series are gone");
  assert.ok(metrics.includes('cluster_name="workload-2"'));
  source.close();
});

Deno.test("watchFilterValue: only Clusters labelled with it are connected", async () => {
  await using f = await fixture({}, { watchFilterValue: "team-a" });
  await f.fleet.addCluster("mine", { labels: { "cluster.x-k8s.io/watch-filter": "team-a" } });
  await f.fleet.addCluster("theirs", { labels: { "cluster.x-k8s.io/watch-filter": "team-b" } });
  await f.fleet.addCluster("unlabelled");
  await f.connected("mine");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(f.cache.clusters().map((c) => c.name), ["mine"]);
  // Relabelling out of the filter disconnects and forgets.
  f.fleet.setClusterLabels("mine", { "cluster.x-k8s.io/watch-filter": "team-b" });
  await eventually(() => f.cache.clusters().length === 0, "the relabelled cluster to be forgotten");
});

Deno.test("clusterFilter returning false disconnects and forgets the Cluster", async () => {
  let allow = true;
  await using f = await fixture({ clusters: 2 }, {
    clusterFilter: (c) => allow || c.metadata?.name !== "workload-1",
  });
  await f.connected("workload-1");
  await f.connected("workload-2");
  allow = false;
  f.fleet.setClusterLabels("workload-1", { touched: "yes" }); // any change triggers a reconcile
  await eventually(
    () => !f.cache.clusters().some((c) => c.name === "workload-1"),
    "workload-1 to be forgotten",
  );
  assert.ok(f.cache.getConnectionState(key("workload-2")).connected);
});

Deno.test("a rotated kubeconfig Secret is picked up without waiting for a failed probe", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 60_000, timeoutMs: 500, failureThreshold: 3 },
  });
  await f.connected("workload-1");
  const source = f.cache.getClusterSource("rotation", (c) => [c.metadata!.name!]);
  const events: string[] = [];
  source.subscribe((_r, e) => events.push(`${e.reasons.join("+")} ${e.connected}`));
  assert.deepEqual(events.splice(0), ["connect true"]);
  const before = f.cache.getRESTConfig(key("workload-1")).clientCertificatePem;
  await f.fleet.cluster("workload-1").rotateCredentials(); // also rewrites the Secret
  await eventually(
    () =>
      f.cache.getConnectionState(key("workload-1")).connected &&
      f.cache.getRESTConfig(key("workload-1")).clientCertificatePem !== before,
    "a reconnect with the new credentials",
  );
  // One event, its reasons in the order things happened, and the state after them. It goes out at
  // the end of the reconcile that swapped the connections.
  await eventually(() => events.length > 0, "the reconnect's event");
  assert.deepEqual(events, ["disconnect+connect true"]);
  const nodes = await f.cache.getClient(key("workload-1")).list({ apiVersion: "v1", kind: "Node" });
  assert.equal(nodes.items.length, 1);
  source.close();
});

Deno.test("running on the workload cluster (Pod found with our UID) switches to the in-cluster address", async () => {
  await using fleet = await SimulatedFleet.start();
  const mine = await fleet.addCluster("mine");
  const elsewhere = await fleet.addCluster("elsewhere");
  const pod = { metadata: { name: "operator-0", namespace: "kube-system" }, spec: {} };
  const ours = mine.store.create(mine.typeOf("", "pods")!, pod);
  elsewhere.store.create(elsewhere.typeOf("", "pods")!, pod); // same name, another UID: not us
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  await using cache = await ClusterCache.setup({
    ...FAST,
    management,
    podIdentity: { namespace: "kube-system", name: "operator-0", uid: ours.metadata!.uid! },
    // localhost is in the serving certificate's SANs, so the switch is observable and still verified.
    inClusterConfig: { server: `https://localhost:${mine.port}`, caPem: mine.credentials().caPem },
  });
  await eventually(() => cache.getConnectionState(key("mine")).connected, "mine to connect");
  await eventually(
    () => cache.getConnectionState(key("elsewhere")).connected,
    "elsewhere to connect",
  );
  assert.equal(cache.getRESTConfig(key("mine")).server, `https://localhost:${mine.port}`);
  assert.equal(cache.getRESTConfig(key("elsewhere")).server, elsewhere.url);
  const nodes = await cache.getClient(key("mine")).list({ apiVersion: "v1", kind: "Node" });
  assert.equal(nodes.items.length, 1);
});

Deno.test("kubeconfig Secrets are watched by type: no live read per connected cluster per reconcile, labelled or not", async () => {
  await using f = await fixture({ clusters: 3 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
  });
  const secrets = f.fleet.management.typeOf("", "secrets")!;
  // Secrets Cluster API did not label (older clusters): still of its type.
  for (const c of f.fleet.clusters) {
    const secret = f.fleet.management.store.get(secrets, "default", `${c.name}-kubeconfig`)!;
    f.fleet.management.store.update(secrets, {
      ...secret,
      metadata: { ...secret.metadata, labels: {} },
    });
  }
  for (const c of f.fleet.clusters) await f.connected(c.name);
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 1_500)); // ~15 reconciles per cluster
  const reads = f.fleet.management.requestsSince(since)
    .filter((r) => r.method === "GET" && r.path.includes("/secrets/"));
  assert.deepEqual(reads.map((r) => r.path), [], "no Secret was read live");
  // Rotation is still noticed from the watch.
  const before = f.cache.getRESTConfig(key("workload-1")).clientCertificatePem;
  await f.fleet.cluster("workload-1").rotateCredentials();
  await eventually(
    () =>
      f.cache.getConnectionState(key("workload-1")).connected &&
      f.cache.getRESTConfig(key("workload-1")).clientCertificatePem !== before,
    "a reconnect with the rotated credentials",
  );
});
