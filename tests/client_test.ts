import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import {
  ClusterCacheError,
  ClusterNotConnectedError,
  isConflict,
  isNotFound,
  type KubeObject,
  KubernetesApiError,
  NodeProviderIDIndex,
} from "../mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";
import { restConfigFor } from "./helpers/rest_config.ts";
import { SimulatedApiServer } from "../testing/mod.ts";
import { WorkerClient } from "../src/main/client.ts";
import { resolveOptions } from "../src/main/options.ts";
import { workerOptionsFlag } from "../src/main/sessions/worker_options_flag.ts";
import { workerConfig } from "../src/main/sessions/worker_config.ts";
import { dedicatedSession } from "../src/main/sessions/session.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const NODE = { apiVersion: "v1", kind: "Node" };
const DEPLOY = { apiVersion: "apps/v1", kind: "Deployment" };
const fixtures = new URL("./fixtures/indexes.ts", import.meta.url).href;

Deno.test("cached reads return what the server holds: get, list, label and field selectors, indexes", async () => {
  await using f = await fixture({ clusters: 1 }, {
    cache: {
      indexes: [
        NodeProviderIDIndex,
        { kind: CM, field: "dataKey", extract: { module: fixtures, export: "dataKeys" } },
      ],
    },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const cmType = server.typeOf("", "configmaps")!;
  server.store.create(server.typeOf("", "namespaces")!, { metadata: { name: "team" } });
  server.store.create(cmType, {
    metadata: { name: "a", namespace: "default", labels: { app: "web" } },
    data: { color: "blue" },
  });
  server.store.create(cmType, {
    metadata: { name: "b", namespace: "team", labels: { app: "db" } },
    data: { size: "L" },
  });
  const reader = f.cache.getReader(key("workload-1"));

  const a = await reader.get(CM, { namespace: "default", name: "a" });
  assert.equal(
    a.apiVersion,
    "v1",
    "cached objects carry apiVersion and kind even from typed lists",
  );
  assert.equal(a.kind, "ConfigMap");
  assert.deepEqual(a.data, { color: "blue" });
  const names = (list: { items: KubeObject[] }) => list.items.map((o) => o.metadata!.name).sort();
  assert.deepEqual(names(await reader.list(CM)), ["a", "b"]);
  assert.deepEqual(names(await reader.list(CM, { namespace: "team" })), ["b"]);
  assert.deepEqual(names(await reader.list(CM, { labelSelector: "app in (web)" })), ["a"]);
  assert.deepEqual(names(await reader.list(CM, { fieldSelector: "metadata.name=b" })), ["b"]);
  assert.deepEqual(names(await reader.list(CM, { fieldSelector: "dataKey=size" })), ["b"]);
  const node = await reader.list(NODE, {
    fieldSelector: "spec.providerID=sim://workload-1/workload-1-control-plane",
  });
  assert.deepEqual(names(node), ["workload-1-control-plane"]);
  await assert.rejects(reader.list(CM, { fieldSelector: "data.color=blue" }), (e: Error) => {
    assert.ok(e instanceof ClusterCacheError && e.code === "NotIndexed", String(e));
    return true;
  });
  await assert.rejects(reader.get(CM, { namespace: "default", name: "missing" }), (e: Error) => {
    assert.ok(isNotFound(e));
    assert.equal(e.message, 'configmaps "missing" not found');
    return true;
  });
});

Deno.test("writes go live and show up in the cache; stale updates conflict", async () => {
  // The test writes the Deployment's status itself: no simulated controller writes it meanwhile.
  await using f = await fixture({ clusters: 1, server: { rollouts: false } });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await client.list(DEPLOY); // start the informer
  const created = await client.create({
    ...DEPLOY,
    metadata: { name: "web", namespace: "default" },
    spec: { replicas: 1 },
  });
  assert.equal(created.metadata!.generation, 1);
  await eventually(
    async () => (await client.list(DEPLOY)).items.length === 1,
    "the create to reach the cache",
  );
  const updated = await client.update({ ...created, spec: { replicas: 2 } });
  assert.equal(updated.metadata!.generation, 2);
  await assert.rejects(
    client.update({ ...created, spec: { replicas: 3 } }),
    (e: Error) => isConflict(e),
  );
  const status = await client.update({ ...updated, status: { readyReplicas: 2 } }, {
    subresource: "status",
  });
  assert.deepEqual(status.status, { readyReplicas: 2 });
  const json = await client.patch(DEPLOY, { namespace: "default", name: "web" }, {
    type: "json",
    patch: [{ op: "replace", path: "/spec/replicas", value: 5 }],
  });
  assert.equal((json.spec as { replicas: number }).replicas, 5);
  const applied = await client.patch(CM, { namespace: "default", name: "applied" }, {
    type: "apply",
    fieldManager: "tests",
    patch: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "applied", namespace: "default" },
      data: { a: "1" },
    },
  });
  assert.deepEqual(applied.data, { a: "1" });
  const dry = await client.create({ ...DEPLOY, metadata: { name: "dry", namespace: "default" } }, {
    dryRun: true,
  });
  assert.equal(dry.metadata!.name, "dry");
  await client.delete(DEPLOY, { namespace: "default", name: "web" });
  await eventually(
    async () => (await client.list(DEPLOY)).items.length === 0,
    "the delete to reach the cache",
  );
  await assert.rejects(
    client.get(DEPLOY, { namespace: "default", name: "dry" }),
    (e: Error) => isNotFound(e),
  );
});

Deno.test("the uncached client reads live; disableFor kinds are read live even through getClient", async () => {
  await using f = await fixture({ clusters: 1 }, {
    cache: { byObject: [{ kind: CM, transform: { module: fixtures, export: "markCached" } }] },
    client: {
      userAgent: "tests",
      timeoutMs: 2_000,
      cache: { disableFor: [{ apiVersion: "v1", kind: "Secret" }] },
    },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  server.store.create(server.typeOf("", "configmaps")!, {
    metadata: { name: "c", namespace: "default" },
  });
  const cached = await f.cache.getClient(key("workload-1")).get(CM, {
    namespace: "default",
    name: "c",
  });
  const live = await f.cache.getUncachedClient(key("workload-1")).get(CM, {
    namespace: "default",
    name: "c",
  });
  assert.equal(cached.metadata!.labels?.cached, "yes");
  assert.equal(live.metadata!.labels?.cached, undefined);
  assert.equal(live.kind, "ConfigMap");
  server.store.create(server.typeOf("", "secrets")!, {
    metadata: { name: "s", namespace: "default" },
  });
  const secret = await f.cache.getClient(key("workload-1")).get({
    apiVersion: "v1",
    kind: "Secret",
  }, { namespace: "default", name: "s" });
  assert.equal(secret.metadata!.name, "s");
  const stats = server.requestsSince(0).filter((r) => r.watch && r.path.includes("secrets"));
  assert.equal(stats.length, 0, "no informer was started for a kind in disableFor");
});

Deno.test("a kind the cluster does not serve is a NoKindMatch error; bad arguments are TypeErrors", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(key("workload-1"));
  await assert.rejects(
    client.list({ apiVersion: "example.com/v1", kind: "Widget" }),
    (e: Error) => {
      assert.ok(e instanceof ClusterCacheError && e.code === "NoKindMatch");
      assert.equal(e.message, 'no matches for kind "Widget" in version "example.com/v1"');
      return true;
    },
  );
  await assert.rejects(client.get(CM, { name: "" }), TypeError);
  await assert.rejects(
    client.get({ apiVersion: "v1" } as { apiVersion: string; kind: string }, { name: "x" }),
    TypeError,
  );
  await assert.rejects(client.create({ metadata: { name: "x" } }), TypeError);
  await assert.rejects(
    client.create({ ...CM, metadata: { name: "x" } }),
    /without metadata.namespace/,
  );
  assert.throws(
    () => f.cache.getClient({ namespace: "default" } as { namespace: string; name: string }),
    TypeError,
  );
});

Deno.test("getRESTConfig() and getKubeConfig() describe the cluster; client-node works with the KubeConfig", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const rest = f.cache.getRESTConfig(key("workload-1"));
  const server = f.fleet.cluster("workload-1");
  assert.equal(rest.server, server.url);
  assert.equal(rest.userAgent, "clustercache-tests");
  assert.deepEqual([rest.timeoutMs, rest.qps, rest.burst], [2_000, 20, 30]);
  assert.equal(rest.caPem, server.credentials().caPem);
  const kc = f.cache.getKubeConfig(key("workload-1"));
  const namespaces = await kc.makeApiClient(k8s.CoreV1Api).listNamespace();
  assert.ok(namespaces.items.some((n) => n.metadata?.name === "kube-system"));
  assert.throws(() => f.cache.getRESTConfig(key("nope")), ClusterNotConnectedError);
  assert.throws(
    () => f.cache.getKubeConfig(key("nope")),
    /error getting kubeconfig: connection to the workload cluster is down/,
  );
  // client-node leaves keep-alive sockets and their timers behind; let them run out.
  await new Promise((r) => setTimeout(r, 1500));
});

Deno.test("the private key is RSA-2048, kept across reconnects, and absent before the first connect", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.fleet.addCluster("never", { infrastructureReady: false });
  await f.connected("workload-1");
  const first = await f.cache.getClientCertificatePrivateKey(key("workload-1"));
  assert.ok(first);
  const algorithm = first.privateKey.algorithm as RsaHashedKeyAlgorithm;
  assert.equal(algorithm.name, "RSASSA-PKCS1-v1_5");
  assert.equal(algorithm.modulusLength, 2048);
  const before = f.cache.getRESTConfig(key("workload-1")).clientCertificatePem;
  await f.fleet.cluster("workload-1").rotateCredentials(); // forces a reconnect
  await eventually(() => {
    const state = f.cache.getConnectionState(key("workload-1"));
    return state.connected &&
      f.cache.getRESTConfig(key("workload-1")).clientCertificatePem !== before;
  }, "a reconnect with new credentials");
  assert.equal(await f.cache.getClientCertificatePrivateKey(key("workload-1")), first);
  await eventually(
    () => f.cache.clusters().some((c) => c.name === "never"),
    "the accessor of the unready cluster",
  );
  assert.equal(await f.cache.getClientCertificatePrivateKey(key("never")), undefined);
});

Deno.test("getUncachedClient(), getReader() and getRESTConfig() fail with Cluster API's prefixes when disconnected", async () => {
  await using f = await fixture();
  const cases: [() => unknown, string][] = [
    [() => f.cache.getClient(key("x")), "error getting client"],
    [() => f.cache.getReader(key("x")), "error getting client reader"],
    [() => f.cache.getUncachedClient(key("x")), "error getting uncached client"],
    [() => f.cache.getRESTConfig(key("x")), "error getting REST config"],
  ];
  for (const [call, prefix] of cases) {
    assert.throws(
      call,
      (e: Error) =>
        e instanceof ClusterNotConnectedError &&
        e.message === `${prefix}: connection to the workload cluster is down`,
    );
  }
});

Deno.test("a cached read of a kind that never syncs fails within the client timeout; the informer keeps syncing", async () => {
  await using f = await fixture({ clusters: 1 }, {
    client: { userAgent: "clustercache-tests", timeoutMs: 1_500 },
    initialSyncTimeoutMs: 60_000,
    // The fault fails probes too: keep the cluster connected through it.
    healthProbe: { intervalMs: 200, timeoutMs: 500, failureThreshold: 1_000 },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  // Every answer is a 500 (a down aggregated API, a CRD whose list keeps failing): no sync, ever.
  server.setFaults({ errorRate: { rate: 1, codes: [500], retryAfterSeconds: 0 } });
  const reader = f.cache.getReader(key("workload-1"));
  const started = performance.now();
  await assert.rejects(
    reader.list(CM),
    (error: Error) =>
      error instanceof ClusterCacheError && error.code === "CacheSyncTimeout" &&
      /did not sync within 1500ms; it keeps syncing/.test(error.message),
  );
  const waited = performance.now() - started;
  assert.ok(waited < 1_500 + 1_000, `waited ${waited.toFixed(0)} ms, not the sync timeout`);
  await server.clearFaults();
  await eventually(
    () => reader.list(CM).then(() => true, () => false),
    "the informer to sync in the background",
    60_000,
  );
});

Deno.test("cached reads of cluster-scoped kinds ignore a namespace, as live reads do", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cached = f.cache.getReader(key("workload-1"));
  const live = f.cache.getUncachedClient(key("workload-1"));
  const name = "workload-1-control-plane";
  const fromLive = await live.get(NODE, { namespace: "default", name });
  const fromCache = await cached.get(NODE, { namespace: "default", name });
  assert.equal(fromCache.metadata!.uid, fromLive.metadata!.uid);
  const listed = await cached.list(NODE, { namespace: "default" });
  assert.deepEqual(listed.items.map((n) => n.metadata!.name), [name]);
});

Deno.test("cached lists page with limit and continue, in key order; a foreign token is a 400", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  for (const name of ["e", "b", "d", "a", "c"]) {
    server.store.create(type, { metadata: { name, namespace: "default" } });
  }
  const reader = f.cache.getReader(key("workload-1"));
  await eventually(
    async () => (await reader.list(CM, { namespace: "default" })).items.length >= 5,
    "sync",
  );
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await reader.list(CM, {
      namespace: "default",
      limit: 2,
      ...(token ? { continue: token } : {}),
    });
    assert.ok(page.items.length <= 2);
    seen.push(...page.items.map((o) => o.metadata!.name!));
    token = page.metadata?.continue;
    pages++;
  } while (token);
  assert.deepEqual(seen.filter((n) => n.length === 1), ["a", "b", "c", "d", "e"]);
  assert.equal(pages, Math.ceil(seen.length / 2));
  await assert.rejects(
    reader.list(CM, { limit: 2, continue: "not-ours" }),
    (e: Error) => e instanceof KubernetesApiError && e.code === 400,
  );
});

Deno.test("two module-fed indexed fields in one cached field selector", async () => {
  await using f = await fixture({ clusters: 1 }, {
    cache: {
      indexes: [
        { kind: CM, field: "dataKey", extract: { module: fixtures, export: "dataKeys" } },
        { kind: CM, field: "dataValue", extract: { module: fixtures, export: "dataValues" } },
      ],
    },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  server.store.create(type, {
    metadata: { name: "x", namespace: "default" },
    data: { color: "blue" },
  });
  server.store.create(type, {
    metadata: { name: "y", namespace: "default" },
    data: { color: "red" },
  });
  server.store.create(type, {
    metadata: { name: "z", namespace: "default" },
    data: { size: "blue" },
  });
  const reader = f.cache.getReader(key("workload-1"));
  await eventually(async () => (await reader.list(CM)).items.length >= 3, "sync");
  const found = await reader.list(CM, { fieldSelector: "dataKey=color,dataValue=blue" });
  assert.deepEqual(found.items.map((o) => o.metadata!.name), ["x"]);
});

Deno.test("a write still in flight when its cluster moves to another worker fails as retryable, not as not connected", async () => {
  await using server = await SimulatedApiServer.start({ name: "moving" });
  const management = new k8s.KubeConfig();
  management.loadFromString(server.kubeconfig());
  const options = resolveOptions(
    { management, client: { userAgent: "tests", timeoutMs: 5_000 } },
    workerOptionsFlag,
  );
  const hooks = {
    onEvents() {},
    onLog() {},
    onInformer() {},
    onFailure() {},
  };
  const session = dedicatedSession(key("moving"), "inherit", hooks);
  try {
    await session.call({
      op: "init",
      config: workerConfig(key("moving"), restConfigFor(server, 5_000), options, {
        dedicated: true,
        podCheck: false,
      }),
    }, { timeoutMs: 10_000, operation: "init" });
    const client = new WorkerClient({
      cluster: "default/workload-1",
      options,
      connection: () => ({ session }),
    }, false);
    server.hangRequests({ method: "POST", path: /\/configmaps$/ });
    const write = client.create({ ...CM, metadata: { namespace: "default", name: "w" } }).then(
      () => undefined,
      (error) => error,
    );
    await eventually(() => server.requests.some((r) => r.method === "POST"), "the write to go out");
    session.terminate("cluster default/moving moved to another worker", true); // a move ends
    const error = await write;
    assert.ok(!(error instanceof ClusterNotConnectedError), String(error));
    assert.ok(error instanceof ClusterCacheError && error.code === "Timeout", String(error));
    assert.match(error.message, /may or may not have been applied/);
  } finally {
    session.terminate();
  }
});

Deno.test("a server that pushes back (429 and 503 with Retry-After) is waited for and asked again: every write goes through", async () => {
  await using f = await fixture({ clusters: 1 }, {
    client: { userAgent: "tests", timeoutMs: 10_000 },
    healthProbe: { intervalMs: 60_000, timeoutMs: 5_000, failureThreshold: 3 },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  // The first writes are pushed back for certain (a random rate alone left all 12 untouched in
  // about one run in seventy); the rate then pushes back some of the rest, retries included.
  server.failRequests({ method: "POST", path: /\/configmaps$/ }, 1, 429);
  server.failRequests({ method: "POST", path: /\/configmaps$/ }, 1, 503);
  server.setFaults({ errorRate: { rate: 0.3, codes: [429, 503], retryAfterSeconds: 1 } });
  const live = f.cache.getUncachedClient(key("workload-1"));
  const results = await Promise.allSettled(
    Array.from(
      { length: 12 },
      (_, i) => live.create({ ...CM, metadata: { namespace: "default", name: `pushed-${i}` } }),
    ),
  );
  await server.clearFaults();
  assert.deepEqual(
    results.filter((r) => r.status === "rejected").map((r) =>
      String((r as PromiseRejectedResult).reason)
    ),
    [],
  );
  await eventually(
    async () => {
      const text = await f.cache.metrics.registry.metrics();
      return ["429", "503"].every((code) =>
        new RegExp(
          `rest_client_request_retries_total\\{cluster_name="workload-1",cluster_namespace="default",code="${code}",method="POST"\\} [1-9]`,
        ).test(text)
      );
    },
    "the retries to be counted (they come with the next probe or stats report)",
    15_000,
  );
});
