/**
 * Credential rotation without tearing everything down: a rotated token is updated in place, any
 * other change connects anew before letting go, and a 401 re-reads the Secret before it counts.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import type { ClusterEvent } from "../mod.ts";
import { ClusterCache } from "../mod.ts";
import { startedWorkerCount } from "../src/main/sessions/session.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const W1 = key("workload-1");

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

Deno.test("a token-only change of the kubeconfig Secret is applied in place: no disconnect, no events, no relist", async () => {
  await using f = await fixture({ clusters: 1, kubeconfigAuth: "token" }, {
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
  });
  await f.connected("workload-1");
  const events: ClusterEvent[] = [];
  const source = f.cache.getClusterSource("rotation", (c) => [c.metadata!.name!]);
  source.subscribe((_r, e) => events.push(e));
  events.length = 0; // the connect it heard on creation
  const seen: string[] = [];
  await (await f.cache.watch(W1, {
    name: "cms",
    kind: CM,
    handler: (e) => void seen.push(e.object.metadata!.name!),
  })).synced;
  const server = f.fleet.cluster("workload-1");
  const lists = () =>
    server.requestsSince(0).filter((q) => q.method === "GET" && q.path.endsWith("/configmaps"))
      .length;
  const listsBefore = lists();
  const workers = startedWorkerCount();
  const before = f.cache.getRESTConfig(W1).token;
  await server.rotateCredentials(); // the old token gets 401 from now on; the Secret is rewritten
  await eventually(() => f.cache.getRESTConfig(W1).token !== before, "the new token in use");
  await f.cache.getClient(W1).create({ ...CM, metadata: { name: "after", namespace: "default" } });
  await eventually(() => seen.includes("after"), "the old watch to go on");
  await new Promise((r) => setTimeout(r, 500)); // several probes with the new token
  assert.deepEqual(events, [], "no cluster event");
  assert.equal(startedWorkerCount(), workers, "no new worker");
  assert.equal(lists(), listsBefore, "no relist");
  assert.equal(f.cache.getHealthCheckingState(W1).consecutiveFailures, 0);
  source.close();
});

Deno.test("any other kubeconfig change connects anew before letting go: the cluster is never disconnected", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
  });
  await f.connected("workload-1");
  const events: string[] = [];
  const source = f.cache.getClusterSource("rotation", (c) => [c.metadata!.name!]);
  source.subscribe((_r, e) => events.push(`${e.reasons.join("+")} ${e.connected}`));
  events.length = 0;
  let down = 0;
  const sampler = setInterval(() => {
    if (!f.cache.getConnectionState(W1).connected) down++;
  }, 5);
  try {
    const before = f.cache.getRESTConfig(W1).clientCertificatePem;
    await f.fleet.cluster("workload-1").rotateCredentials(); // a new client certificate
    await eventually(
      () => f.cache.getRESTConfig(W1).clientCertificatePem !== before,
      "the new connection",
    );
  } finally {
    clearInterval(sampler);
  }
  assert.equal(down, 0, "connected at every sample");
  // The event goes out at the end of the reconcile that swapped the connections.
  await eventually(() => events.length > 0, "the swap's event");
  assert.deepEqual(events, ["disconnect+connect true"], "watches must be added again: one event");
  const nodes = await f.cache.getClient(W1).list({ apiVersion: "v1", kind: "Node" });
  assert.equal(nodes.items.length, 1);
  source.close();
});

Deno.test("a changed kubeconfig that does not connect leaves the old connection serving", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
    connectionCreationRetryIntervalMs: 60_000,
  });
  await f.connected("workload-1");
  const secrets = f.fleet.management.typeOf("", "secrets")!;
  const secret = f.fleet.management.store.get(secrets, "default", "workload-1-kubeconfig")!;
  const broken = f.fleet.cluster("workload-1").kubeconfig().replace(
    /server: https:\/\/127\.0\.0\.1:\d+/,
    "server: https://127.0.0.1:1",
  );
  f.fleet.management.store.update(secrets, { ...secret, data: { value: base64(broken) } });
  await eventually(
    () => f.cache.getConnectionState(W1).lastConnectionError !== undefined,
    "the failed attempt with the new kubeconfig",
  );
  assert.ok(f.cache.getConnectionState(W1).connected, "still connected on the old connection");
  const nodes = await f.cache.getClient(W1).list({ apiVersion: "v1", kind: "Node" });
  assert.equal(nodes.items.length, 1);
});

Deno.test("a 401 re-reads the Secret before it counts: a rotated token found there is applied in place", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 1, kubeconfigAuth: "token" });
  const server = fleet.cluster("workload-1");
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  // A reader whose Secret never changes resourceVersion: only the 401 path can see the new token.
  const secretReader = {
    get: () =>
      Promise.resolve({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "workload-1-kubeconfig", namespace: "default", resourceVersion: "1" },
        data: { value: base64(server.kubeconfig("token")) },
      }),
  };
  await using cache = await ClusterCache.setup({
    ...FAST,
    management,
    secretReader,
    healthProbe: { intervalMs: 100, timeoutMs: 500, failureThreshold: 3 },
  });
  await eventually(() => cache.getConnectionState(W1).connected, "connected");
  const events: string[] = [];
  const source = cache.getClusterSource("401", (c) => [c.metadata!.name!]);
  source.subscribe((_r, e) => events.push(e.reasons.join("+")));
  events.length = 0;
  const before = cache.getRESTConfig(W1).token;
  await server.rotateCredentials({ notify: false });
  await eventually(() => cache.getRESTConfig(W1).token !== before, "the new token in use");
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(cache.getConnectionState(W1).connected);
  assert.deepEqual(events, [], "no disconnect for a 401 the Secret explains");
  assert.equal(cache.getHealthCheckingState(W1).consecutiveFailures, 0);
  source.close();
});
