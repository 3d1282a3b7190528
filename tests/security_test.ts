/**
 * Security: no credential in any log record, error message or metric; workers can reach their own
 * API server and nothing else.
 */
import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { ClusterCredentials } from "../testing/mod.ts";
import { eventually, fixture, key, POOLED } from "./helpers/fixture.ts";
import { captureLogs } from "./helpers/logs.ts";

const MARKER = "S3CR3T-MARKER-1b9e";
const b64 = (text: string) => btoa(text);

Deno.test("no credential reaches a log record, an error message or a metric, whatever fails", async () => {
  const records = await captureLogs();
  try {
    await using f = await fixture({ clusters: 1 }, { connectionCreationRetryIntervalMs: 300 });
    await f.connected("workload-1");
    const real = f.fleet.cluster("workload-1");
    const c = real.credentials();
    const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: { server: real.url, "certificate-authority-data": b64(c.caPem), ...cluster },
        }],
        users: [{ name: "u", user }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      });
    const cases: Record<string, string> = {
      "yaml": `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: ${MARKER}\n   broken: [\n`,
      "exec": kubeconfig({
        exec: { command: "get-token", args: [MARKER], env: [{ name: "T", value: MARKER }] },
      }),
      "provider": kubeconfig({ "auth-provider": { name: "oidc", config: { "id-token": MARKER } } }),
      "token": kubeconfig({ token: MARKER }), // refused by the server: 401
      "proxy": kubeconfig({ token: MARKER }, { "proxy-url": `http://user:${MARKER}@127.0.0.1:1` }),
      // A password written with a raw `/` (a URL parser misreads it, or reads the rest as a path
      // after a "port" of digits) or a stray `%`.
      "proxy-slash": kubeconfig({ token: "x" }, {
        "proxy-url": `http://user:a/${MARKER}@127.0.0.1:1`,
      }),
      "proxy-digits": kubeconfig({ token: "x" }, {
        "proxy-url": `http://user:64999/${MARKER}@127.0.0.1:1`, // "64999" parses as a port
      }),
      "proxy-percent": kubeconfig({ token: "x" }, {
        "proxy-url": `http://user:%zz${MARKER}@127.0.0.1:1`,
      }),
      // A server URL carrying a password, parseable or not.
      "server-userinfo": kubeconfig({ token: "x" }, {
        server: `https://user:${MARKER}@127.0.0.1:1`,
      }),
      "server-broken": kubeconfig({ token: "x" }, { server: `https://u:${MARKER}@[::1` }),
      "ca": kubeconfig({ token: "x" }, {
        "certificate-authority-data": b64(
          `-----BEGIN CERTIFICATE-----\n${MARKER}\n-----END CERTIFICATE-----\n`,
        ),
      }),
      "key": kubeconfig({
        "client-certificate-data": b64(c.clientCertificatePem),
        "client-key-data": b64(
          `-----BEGIN PRIVATE KEY-----\n${MARKER}\n-----END PRIVATE KEY-----\n`,
        ),
      }),
      "skip": kubeconfig({ token: MARKER }, { "insecure-skip-tls-verify": true }),
    };
    const secrets = f.fleet.management.typeOf("", "secrets")!;
    const clusters = f.fleet.management.typeOf("cluster.x-k8s.io", "clusters")!;
    for (const [name, text] of Object.entries(cases)) {
      // The broken Secret exists before the Cluster does: no connect ever sees a good one.
      await f.fleet.addCluster(`bad-${name}`, { register: false });
      f.fleet.management.store.create(secrets, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: `bad-${name}-kubeconfig`,
          namespace: "default",
          labels: { "cluster.x-k8s.io/cluster-name": `bad-${name}` },
        },
        type: "cluster.x-k8s.io/secret",
        data: { value: b64(text) },
      });
      f.fleet.management.store.create(clusters, {
        apiVersion: "cluster.x-k8s.io/v1beta2",
        kind: "Cluster",
        metadata: { name: `bad-${name}`, namespace: "default" },
        status: { initialization: { infrastructureProvisioned: true } },
      }, { keepStatus: true });
    }
    const errors: string[] = [];
    await eventually(
      () =>
        Object.keys(cases).every((n) =>
          f.cache.getConnectionState(key(`bad-${n}`)).lastConnectionError
        ),
      "every bad cluster to fail",
      15_000,
    );
    // A password's digits taken for a port must not be quoted as part of a host either.
    const digits = f.cache.getConnectionState(key("bad-proxy-digits")).lastConnectionError!;
    assert.match(digits, /proxy-url must be http:\/\/\[user:password@\]host/);
    assert.doesNotMatch(digits, /64999/);
    for (const name of Object.keys(cases)) {
      errors.push(f.cache.getConnectionState(key(`bad-${name}`)).lastConnectionError!);
      try {
        f.cache.getClient(key(`bad-${name}`));
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
    // A working cluster whose token is then refused: the 401 path of a connected cluster.
    await real.rotateCredentials({ notify: false });
    await eventually(
      () => /401/.test(f.cache.getConnectionState(key("workload-1")).lastConnectionError ?? ""),
      "the 401 disconnect and a refused reconnect",
    );
    errors.push(f.cache.getConnectionState(key("workload-1")).lastConnectionError!);
    const metrics = await f.cache.metrics.registry.metrics();
    const logged = records.map((r) =>
      JSON.stringify({ message: r.message, properties: r.properties })
    );
    assert.ok(logged.length > 10, "there were log records to check");
    assert.ok(errors.every((e) => e.length > 0));
    for (const text of [...errors, ...logged, metrics]) {
      assert.ok(!text.includes(MARKER), `a credential leaked: ${text.slice(0, 300)}`);
      assert.ok(
        !text.includes("BEGIN CERTIFICATE") && !text.includes("PRIVATE KEY"),
        `PEM leaked: ${text.slice(0, 300)}`,
      );
      assert.ok(!text.includes(c.token), "a real token leaked");
    }
    // The messages still say what was wrong.
    const joined = errors.join("\n");
    for (
      const expected of [
        /invalid YAML/,
        /ExecProvider/,
        /AuthProvider/,
        /401/,
        /insecure-skip-tls-verify/,
        /not a PEM|certificates/,
      ]
    ) {
      assert.match(joined, expected);
    }
  } finally {
    await reset();
  }
});

Deno.test(
  POOLED
    ? "a pooled worker reaches API servers (its network is not limited)"
    : "a worker reaches its own API server and nothing else (least privilege)",
  async () => {
    await using f = await fixture({ clusters: 2 }, {
      cache: {
        byObject: [{
          kind: { apiVersion: "v1", kind: "ConfigMap" },
          transform: {
            module: new URL("./fixtures/network_probe.ts", import.meta.url).href,
            export: "probe",
          },
        }],
      },
    });
    await f.connected("workload-1");
    const server = f.fleet.cluster("workload-1");
    const other = f.fleet.cluster("workload-2");
    const type = server.typeOf("", "configmaps")!;
    server.store.create(type, {
      metadata: { name: "own", namespace: "default" },
      data: { target: `${server.url}/version` },
    });
    server.store.create(type, {
      metadata: { name: "other", namespace: "default" },
      data: { target: `${other.url}/version` },
    });
    server.store.create(type, {
      metadata: { name: "internet", namespace: "default" },
      data: { target: "https://198.51.100.7/" },
    });
    const reader = f.cache.getReader(key("workload-1"));
    const outcome = async (name: string) =>
      (await reader.get({ apiVersion: "v1", kind: "ConfigMap" }, { namespace: "default", name }))
        .metadata?.annotations?.["probe/outcome"];
    await reader.list({ apiVersion: "v1", kind: "ConfigMap" }); // starts the informer (and the probes)
    await new Promise((r) => setTimeout(r, 300));
    for (const name of ["own", "other", "internet"]) {
      const current = server.store.get(type, "default", name)!;
      server.store.update(type, { ...current, data: { ...current.data as object, touch: "1" } }); // re-run the transform
    }
    await eventually(
      async () => !(await outcome("other"))?.startsWith("pending"),
      "the probes to finish",
    );
    if (POOLED) {
      // A pooled worker serves many API servers: its network is not limited (README: when to pick
      // which mode). Files, environment and subprocesses stay out of reach (the next test).
      assert.notEqual(await outcome("other"), "failed NotCapable");
    } else {
      assert.equal(
        await outcome("other"),
        "failed NotCapable",
        "another cluster's server is out of reach",
      );
      assert.equal(await outcome("internet"), "failed NotCapable", "so is everything else");
    }
    // Its own server is reachable (this fetch has no client certificate or CA, so TLS fails; but not
    // because of permissions).
    assert.notEqual(await outcome("own"), "failed NotCapable");
  },
);

Deno.test("a hostile kubeconfig Secret cannot make the controller read its files or impersonate", async () => {
  const records = await captureLogs();
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, `${MARKER}\n`); // what a file reference would read
    await using f = await fixture({ clusters: 0 }, { connectionCreationRetryIntervalMs: 200 });
    const secrets = f.fleet.management.typeOf("", "secrets")!;
    const clusterType = f.fleet.management.typeOf("cluster.x-k8s.io", "clusters")!;
    const cases: [string, (c: ClusterCredentials) => Record<string, unknown>, boolean][] = [
      ["users[0].user.token-file", () => ({ "token-file": file }), false],
      ["users[0].user.tokenFile", () => ({ tokenFile: file }), false],
      ["users[0].user.client-certificate", (c) => ({
        "client-certificate": file,
        "client-key-data": b64(c.clientKeyPem),
      }), false],
      ["users[0].user.client-key", (c) => ({
        "client-certificate-data": b64(c.clientCertificatePem),
        "client-key": file,
      }), false],
      ["users[0].user.as", (c) => ({ token: c.token, as: "system:admin" }), false],
      [
        "users[0].user.as-groups",
        (c) => ({ token: c.token, "as-groups": ["system:masters"] }),
        false,
      ],
      ["users[0].user.as-uid", (c) => ({ token: c.token, "as-uid": "0" }), false],
      [
        "users[0].user.as-user-extra",
        (c) => ({ token: c.token, "as-user-extra": { a: ["b"] } }),
        false,
      ],
      ["clusters[0].cluster.certificate-authority", (c) => ({ token: c.token }), true],
    ];
    for (const [i, [field, user, caFile]] of cases.entries()) {
      const name = `hostile-${i}`;
      // A server no one else talks to: any request it sees came from the hostile kubeconfig.
      const server = await f.fleet.addCluster(name, { register: false });
      const c = server.credentials();
      const since = Date.now();
      const text = JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: {
            server: server.url,
            ...(caFile
              ? { "certificate-authority": file }
              : { "certificate-authority-data": b64(c.caPem) }),
          },
        }],
        users: [{ name: "u", user: user(c) }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      });
      f.fleet.management.store.create(secrets, {
        metadata: { name: `${name}-kubeconfig`, namespace: "default" },
        type: "cluster.x-k8s.io/secret",
        data: { value: b64(text) },
      });
      f.fleet.management.store.create(clusterType, {
        apiVersion: "cluster.x-k8s.io/v1beta2",
        kind: "Cluster",
        metadata: { name, namespace: "default" },
        status: { initialization: { infrastructureProvisioned: true } },
      }, { keepStatus: true });
      await eventually(
        () => (f.cache.getConnectionState(key(name)).lastConnectionError ?? "").includes(field),
        `the refusal of ${field}`,
      );
      const error = f.cache.getConnectionState(key(name)).lastConnectionError!;
      assert.match(error, /is not allowed in a kubeconfig from a Secret/);
      assert.ok(!error.includes(file) && !error.includes(MARKER), "names the field, not its value");
      assert.equal(f.cache.getConnectionState(key(name)).connected, false);
      assert.equal(server.requestsSince(since).length, 0, `${field}: nothing reached the server`);
    }
    const logged = JSON.stringify(records.map((r) => [r.message, r.properties]));
    assert.ok(!logged.includes(MARKER), "the file's content reached no log record");
    assert.ok(!logged.includes(file), "nor its path");
  } finally {
    await reset();
    await Deno.remove(file);
  }
});
