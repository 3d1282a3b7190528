/**
 * Bad input (SPEC section 8): each gives a clear, typed error naming the problem, a retry by the rules
 * where one makes sense, and no crash.
 */
import assert from "node:assert/strict";
import { ClusterCacheError } from "../mod.ts";
import { createCertificateAuthority, issueCertificate } from "../testing/sim/certs.ts";
import { renderKubeconfig } from "../testing/sim/kubeconfig.ts";
import { converged } from "./helpers/converge.ts";
import { eventually, type Fixture, fixture, key } from "./helpers/fixture.ts";
import { b64, kubeconfigText } from "./helpers/kubeconfig_text.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const W1 = key("workload-1");

/** Writes workload-1's kubeconfig Secret value (`undefined`: no `value` key). */
function setSecret(f: Fixture, value: string | undefined): void {
  const secrets = f.fleet.management.typeOf("", "secrets")!;
  const data = value === undefined ? {} : { value: b64(value) };
  const current = f.fleet.management.store.get(secrets, "default", "workload-1-kubeconfig");
  if (current) {
    f.fleet.management.store.update(secrets, { ...current, data });
    return;
  }
  f.fleet.management.store.create(secrets, {
    metadata: { name: "workload-1-kubeconfig", namespace: "default" },
    type: "cluster.x-k8s.io/secret",
    data,
  });
}

async function brokenFleet(): Promise<Fixture> {
  // Not registered: the broken Secret exists before the Cluster does, so no connect ever sees a
  // good one (the Secret and the Cluster arrive on different watches, in either order).
  const f = await fixture({}, { connectionCreationRetryIntervalMs: 400 });
  await f.fleet.addCluster("workload-1", { register: false });
  return f;
}

async function expectRefused(value: string | undefined, message: RegExp): Promise<void> {
  await using f = await brokenFleet();
  const good = f.fleet.cluster("workload-1").kubeconfig();
  setSecret(f, value);
  f.fleet.management.store.create(f.fleet.management.typeOf("cluster.x-k8s.io", "clusters")!, {
    apiVersion: "cluster.x-k8s.io/v1beta2",
    kind: "Cluster",
    metadata: { name: "workload-1", namespace: "default" },
    status: { initialization: { infrastructureProvisioned: true } },
  }, { keepStatus: true });
  await eventually(() => !!f.cache.getConnectionState(W1).lastConnectionError, "a failed connect");
  assert.match(f.cache.getConnectionState(W1).lastConnectionError!, message);
  assert.equal(f.cache.getConnectionState(W1).connected, false);
  // Fixed by the user: the next attempt, after the retry interval, connects.
  setSecret(f, good);
  await f.connected("workload-1");
}

Deno.test("bad input: malformed kubeconfig YAML", async () => {
  await expectRefused(
    "apiVersion: v1\nclusters: [\n  - {name: broken\n",
    /error parsing kubeconfig: invalid YAML/,
  );
});

Deno.test("bad input: Secret without the key value", async () => {
  await expectRefused(undefined, /missing key "value" in secret data/);
});

Deno.test("bad input: kubeconfig without current-context", async () => {
  const text = JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [],
    users: [],
    contexts: [],
  });
  await expectRefused(text, /no current-context/);
});

async function kubeconfigFor(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
): Promise<string> {
  const ca = await createCertificateAuthority("bad-input");
  return kubeconfigText(ca.certPem, user, { server: "https://127.0.0.1:1", ...cluster });
}

Deno.test("bad input: exec and auth-provider users", async () => {
  await expectRefused(
    await kubeconfigFor({
      exec: { command: "aws", apiVersion: "client.authentication.k8s.io/v1" },
    }),
    /ExecProvider is not supported in ClusterCache/,
  );
  await expectRefused(
    await kubeconfigFor({ "auth-provider": { name: "gcp" } }),
    /AuthProvider is not supported in ClusterCache/,
  );
});

Deno.test("bad input: insecure-skip-tls-verify is refused", async () => {
  await expectRefused(
    await kubeconfigFor({ token: "t" }, { "insecure-skip-tls-verify": true }),
    /insecure-skip-tls-verify is not supported/,
  );
});

Deno.test("bad input: expired, not-yet-valid and v1 client certificates", async () => {
  const ca = await createCertificateAuthority("certs");
  const expired = await issueCertificate(ca, {
    subject: "CN=a",
    notBefore: new Date("2020-01-01"),
    notAfter: new Date("2021-01-01"),
  });
  const early = await issueCertificate(ca, {
    subject: "CN=b",
    notBefore: new Date(Date.now() + 86_400_000),
  });
  const render = (cert: string, keyPem: string) =>
    renderKubeconfig({
      name: "c",
      server: "https://127.0.0.1:1",
      caPem: ca.certPem,
      user: { clientCertificatePem: cert, clientKeyPem: keyPem },
    });
  await expectRefused(
    render(expired.certPem, expired.keyPem),
    /client certificate expired on 2021-01-01/,
  );
  await expectRefused(render(early.certPem, early.keyPem), /not valid before/);
  // A certificate shaped like v1 (no explicit version field).
  const der = Uint8Array.from(
    atob(expired.certPem.replace(/-----[^-]+-----|\s/g, "")),
    (c) => c.charCodeAt(0),
  );
  const header = (at: number) => (der[at + 1]! & 0x80 ? 2 + (der[at + 1]! & 0x7f) : 2);
  const version = header(0) + header(header(0));
  const v1 = new Uint8Array([...der.slice(0, version), ...der.slice(version + 5)]);
  const pem = `-----BEGIN CERTIFICATE-----\n${
    btoa(String.fromCharCode(...v1))
  }\n-----END CERTIFICATE-----\n`;
  await expectRefused(render(pem, expired.keyPem), /X\.509 v1/);
});

Deno.test("bad input: malformed watch lines restart the watch (no crash) and the cache converges", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  const type = server.typeOf("", "configmaps")!;
  await f.cache.getReader(W1).list(CM);
  const errors = async () =>
    Number(
      /clustercache_informer_events_total\{[^}]*kind="v1 ConfigMap",event="error"\} (\d+)/
        .exec(await f.cache.metrics.registry.metrics())?.[1] ?? 0,
    );
  const before = await errors();
  server.setFaults({ garbleWatchLines: true });
  server.store.create(type, { metadata: { name: "during", namespace: "default" } });
  await eventually(
    async () => (await errors()) > before,
    "the informer to meet the malformed line",
  );
  server.setFaults({ garbleWatchLines: false });
  server.store.create(type, { metadata: { name: "after", namespace: "default" } });
  await eventually(
    async () => converged((await f.cache.getReader(W1).list(CM)).items, server, "", "configmaps"),
    "convergence",
  );
  assert.ok(f.cache.getConnectionState(W1).connected);
});

Deno.test("bad input: a non-JSON body is a BadResponse error, not a crash; all is well afterwards", async () => {
  await using f = await fixture({ clusters: 1 }, {
    healthProbe: { intervalMs: 200, timeoutMs: 500, failureThreshold: 100 },
  });
  await f.connected("workload-1");
  const server = f.fleet.cluster("workload-1");
  server.setFaults({ garbleBodies: true });
  await assert.rejects(f.cache.getUncachedClient(W1).list(CM), (e: Error) => {
    assert.ok(e instanceof ClusterCacheError && e.code === "BadResponse", String(e));
    assert.match(e.message, /the response is not JSON/);
    return true;
  });
  server.setFaults({ garbleBodies: false });
  assert.ok((await f.cache.getUncachedClient(W1).list(CM)).items.length >= 0);
});

Deno.test("bad input: an oversized response is refused with a clear error", async () => {
  await using f = await fixture({ clusters: 1 }, { maxResponseBytes: 50_000 });
  await f.connected("workload-1");
  await f.fleet.cluster("workload-1").flood({ count: 100, payloadBytes: 2_000 });
  await assert.rejects(f.cache.getUncachedClient(W1).list(CM), (e: Error) => {
    assert.ok(e instanceof ClusterCacheError && e.code === "BadResponse", String(e));
    assert.match(e.message, /response larger than 50000 bytes/);
    return true;
  });
  const one = await f.cache.getUncachedClient(W1).list(CM, { limit: 5 });
  assert.equal(one.items.length, 5, "smaller answers still work");
});

Deno.test("bad input: an object that cannot cross to the worker is refused with a typed error, no crash", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const client = f.cache.getClient(W1);
  const object = {
    ...CM,
    metadata: { name: "with-a-function", namespace: "default" },
    data: { a: "b" },
    toString: () => "a method cannot be cloned",
  };
  // Alone in its turn (sent at once), and queued behind another call (sent at the turn's end).
  const alone = client.create(object);
  await assert.rejects(alone, (e: Error) => {
    assert.ok(e instanceof TypeError, String(e));
    assert.match(e.message, /cannot be sent to the cluster's worker/);
    return true;
  });
  const [good, queued] = await Promise.allSettled([
    client.get(CM, { namespace: "default", name: "missing" }),
    client.create({ ...object, metadata: { name: "queued", namespace: "default" } }),
  ]);
  assert.equal(good.status, "rejected", "the call before it went and got its answer (NotFound)");
  assert.equal(queued.status, "rejected");
  assert.match(String((queued as PromiseRejectedResult).reason), /cannot be sent/);
  // Nothing was lost: the cluster still serves.
  assert.ok((await client.list(CM, { namespace: "default" })).items.length >= 0);
});
