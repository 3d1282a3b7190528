/**
 * A workload cluster's kubeconfig CA is the only authority its connections trust (as in client-go):
 * a server whose certificate comes from another CA that the process trusts (`DENO_CERT`, the system
 * store, a TLS-inspecting proxy's CA) gets no request and no credential; the same for the
 * management connection. A server in a denied network (link-local, cloud metadata) is refused
 * before anything is sent. The normal path keeps HTTP/2.
 */
import assert from "node:assert/strict";
import { SimulatedApiServer, SimulatedFleet } from "../testing/mod.ts";
import { renderKubeconfig } from "../testing/sim/kubeconfig.ts";
import { startedWorkerCount } from "../src/main/sessions/session.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const MARKER = "pinned-marker-token-3f9c";

/** Runs tests/fixtures/pinned_replica.ts with `DENO_CERT` trusting `trustedPem`; its JSON lines. */
async function replica(
  managementKubeconfig: string,
  cluster: string,
  trustedPem: string,
): Promise<Record<string, unknown>[]> {
  const dir = await Deno.makeTempDir({ prefix: "pinned-" });
  try {
    await Deno.writeTextFile(`${dir}/management.kubeconfig`, managementKubeconfig, { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/trusted.pem`, trustedPem);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("./fixtures/pinned_replica.ts", import.meta.url).pathname,
        `${dir}/management.kubeconfig`,
        cluster,
      ],
      env: { DENO_CERT: `${dir}/trusted.pem` },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const lines = new TextDecoder().decode(output.stdout).split("\n").filter((l) =>
      l.startsWith("{")
    );
    assert.ok(lines.length > 0, new TextDecoder().decode(output.stderr));
    return lines.map((l) => JSON.parse(l));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "a server with a certificate from another CA the process trusts gets no request: the cluster does not connect, and says why",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    // The imposter: its own CA (B), which the replica's process trusts through DENO_CERT.
    await using imposter = await SimulatedApiServer.start({ name: "imposter" });
    const legit = fleet.cluster("workload-1").credentials();
    const secrets = fleet.management.typeOf("", "secrets")!;
    const clusters = fleet.management.typeOf("cluster.x-k8s.io", "clusters")!;
    // A kubeconfig naming the legitimate cluster's CA (A), whose address now leads to the imposter.
    const text = renderKubeconfig({
      name: "hijacked",
      server: imposter.url,
      caPem: legit.caPem,
      user: { token: MARKER },
    });
    fleet.management.store.create(secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "hijacked-kubeconfig",
        namespace: "default",
        labels: { "cluster.x-k8s.io/cluster-name": "hijacked" },
      },
      type: "cluster.x-k8s.io/secret",
      data: { value: btoa(text) },
    });
    fleet.management.store.create(clusters, {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { name: "hijacked", namespace: "default" },
      status: { initialization: { infrastructureProvisioned: true } },
    }, { keepStatus: true });

    const lines = await replica(
      fleet.managementKubeconfig(),
      "hijacked",
      imposter.credentials().caPem,
    );
    assert.equal(lines[0]?.setup, "ok");
    const outcome = lines[1]!;
    assert.equal(outcome.connected, false);
    assert.match(
      String(outcome.error),
      /does not lead to the kubeconfig's certificate authority.*no credential was sent/,
    );
    assert.ok(!String(outcome.error).includes("BEGIN CERTIFICATE"));
    assert.equal(outcome.untrustedCounted, true, "clustercache_connection_errors_total counts it");
    assert.deepEqual(imposter.requests, [], "not one request reached the imposter");
  },
});

Deno.test({
  name:
    "the management connection trusts its kubeconfig's CA only: an imposter trusted by the process fails setup",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 0 });
    await using imposter = await SimulatedApiServer.start({ name: "management-imposter" });
    const text = renderKubeconfig({
      name: "management",
      server: imposter.url,
      caPem: fleet.management.credentials().caPem,
      user: { token: MARKER },
    });
    const lines = await replica(text, "none", imposter.credentials().caPem);
    assert.equal(lines[0]?.setup, "failed");
    assert.match(
      String(lines[0]?.error),
      /does not lead to the kubeconfig's certificate authority/,
    );
    assert.deepEqual(imposter.requests, [], "not one request reached the imposter");
  },
});

Deno.test("a kubeconfig Secret pointing at a metadata or link-local address is refused before anything is sent", async () => {
  await using f = await fixture({ clusters: 1 }, { connectionCreationRetryIntervalMs: 60_000 });
  await f.connected("workload-1");
  const c = f.fleet.cluster("workload-1").credentials();
  const secrets = f.fleet.management.typeOf("", "secrets")!;
  const clusters = f.fleet.management.typeOf("cluster.x-k8s.io", "clusters")!;
  const workers = startedWorkerCount();
  const servers = {
    "metadata": "https://169.254.169.254",
    "mapped": "https://[::ffff:169.254.169.254]:6443",
    "link-local-v6": "https://[fe80::1]:6443",
    "aws-v6": "https://[fd00:ec2::254]",
  };
  for (const [name, server] of Object.entries(servers)) {
    const text = renderKubeconfig({ name, server, caPem: c.caPem, user: { token: MARKER } });
    f.fleet.management.store.create(secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: `${name}-kubeconfig`,
        namespace: "default",
        labels: { "cluster.x-k8s.io/cluster-name": name },
      },
      type: "cluster.x-k8s.io/secret",
      data: { value: btoa(text) },
    });
    f.fleet.management.store.create(clusters, {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { name, namespace: "default" },
      status: { initialization: { infrastructureProvisioned: true } },
    }, { keepStatus: true });
  }
  await eventually(
    () => Object.keys(servers).every((n) => f.cache.getConnectionState(key(n)).lastConnectionError),
    "every Secret to be refused",
  );
  for (const name of Object.keys(servers)) {
    const error = f.cache.getConnectionState(key(name)).lastConnectionError!;
    assert.match(error, /denied network/, `${name}: ${error}`);
    assert.ok(!error.includes(MARKER));
  }
  assert.equal(startedWorkerCount(), workers, "no worker was started for them: nothing was sent");
  assert.match(
    await f.cache.metrics.registry.metrics(),
    /clustercache_connection_errors_total\{cluster_name="metadata",cluster_namespace="default",code="InvalidKubeconfig"\} 1/,
  );
});

Deno.test("the normal path is unchanged: a kubeconfig with its own CA connects, over HTTP/2, one connection", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const reader = f.cache.getReader(key("workload-1"));
  await reader.list({ apiVersion: "v1", kind: "ConfigMap" });
  await reader.list({ apiVersion: "v1", kind: "Node" });
  const server = f.fleet.cluster("workload-1");
  assert.ok(server.connections.length >= 1);
  assert.ok(server.connections.every((c) => c.protocol === "h2"), "HTTP/2 end to end");
  const requests = server.requestsSince(0, { includeWatches: true });
  assert.ok(new Set(requests.map((r) => r.connection)).size <= 2, "multiplexed on one connection");
});
