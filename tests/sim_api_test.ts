import assert from "node:assert/strict";
import { SimulatedApiServer, type SimulatedApiServerOptions } from "../testing/sim/api_server.ts";
import { SimHttp } from "./helpers/sim_http.ts";

const CMS = "/api/v1/namespaces/default/configmaps";

async function withServer(
  fn: (server: SimulatedApiServer, http: SimHttp) => Promise<void>,
  options: Partial<SimulatedApiServerOptions> = {},
): Promise<void> {
  const server = await SimulatedApiServer.start({ name: "t", ...options });
  const http = new SimHttp(server);
  try {
    await fn(server, http);
  } finally {
    http.close();
    await server.close();
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function createConfigMaps(http: SimHttp, count: number, labels: Record<string, string> = {}) {
  for (let i = 0; i < count; i++) {
    const r = await http.request("POST", CMS, {
      body: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `cm-${String(i).padStart(3, "0")}`, labels },
      },
    });
    assert.equal(r.status, 201, r.text);
  }
}

Deno.test("requests without credentials or with unknown ones get a 401 Status", async () => {
  await withServer(async (server) => {
    await using anonymous = new SimHttp(server, "none");
    const r = await anonymous.get("/api/v1/namespaces");
    assert.equal(r.status, 401);
    assert.deepEqual(
      { kind: r.json.kind, reason: r.json.reason, code: r.json.code },
      { kind: "Status", reason: "Unauthorized", code: 401 },
    );
    await using token = new SimHttp(server, "token");
    assert.equal((await token.get("/api/v1/namespaces")).status, 200);
  });
});

Deno.test("a client certificate from another CA is refused with 401, not a TLS failure", async () => {
  await withServer(async (server) => {
    const other = await SimulatedApiServer.start({ name: "other" });
    try {
      const c = other.credentials();
      const client = Deno.createHttpClient({
        caCerts: [server.credentials().caPem],
        cert: c.clientCertificatePem,
        key: c.clientKeyPem,
      });
      try {
        const r = await fetch(server.url + "/", { client });
        await r.body?.cancel();
        assert.equal(r.status, 401);
      } finally {
        client.close();
      }
    } finally {
      await other.close();
    }
  });
});

Deno.test("stop() ends a connection still in its TLS handshake instead of waiting for it", async () => {
  // A client that connects and sends nothing (or whose own TLS failed with its socket left open)
  // never completes a handshake; kube-apiserver closes such a connection, and the simulator's
  // stop() waited for it forever.
  const server = await SimulatedApiServer.start({ name: "silent-client" });
  const silent = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(server.url).port),
  });
  try {
    const stopped = server.stop().then(() => "stopped");
    const timeout = new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("still waiting after 5 s"), 5_000);
      const clear = () => clearTimeout(timer);
      stopped.then(clear, clear);
    });
    assert.equal(await Promise.race([stopped, timeout]), "stopped");
    assert.equal(await silent.read(new Uint8Array(1)), null, "the server closed it");
    await server.start(); // and serves again
    const { token, caPem } = server.credentials();
    using client = Deno.createHttpClient({ caCerts: [caPem] });
    const response = await fetch(`${server.url}/version`, {
      client,
      headers: { authorization: `Bearer ${token}` },
    });
    await response.body?.cancel();
    assert.equal(response.status, 200);
  } finally {
    silent.close(); // first: a server still waiting for it can then stop
    await server.close();
  }
});

Deno.test("discovery, version and health endpoints answer", async () => {
  await withServer(async (_server, http) => {
    assert.deepEqual((await http.get("/api")).json.versions, ["v1"]);
    const groups = (await http.get("/apis")).json.groups.map((g: { name: string }) => g.name);
    assert.deepEqual(groups.sort(), [
      "apps",
      "authentication.k8s.io",
      "authorization.k8s.io",
      "coordination.k8s.io",
    ]);
    const core = (await http.get("/api/v1")).json.resources.map((r: { name: string }) => r.name);
    for (
      const name of ["namespaces", "nodes", "pods", "services", "configmaps", "secrets", "events"]
    ) {
      assert.ok(core.includes(name), name);
    }
    assert.equal((await http.get("/apis/apps/v1")).json.groupVersion, "apps/v1");
    assert.equal((await http.get("/apis/nope/v1")).status, 404);
    assert.equal((await http.get("/version")).json.major, "1");
    for (const path of ["/livez", "/readyz", "/healthz", "/"]) {
      assert.equal((await http.get(path)).status, 200);
    }
  });
});

Deno.test("lists page with limit/continue at one consistent resourceVersion", async () => {
  await withServer(async (server, http) => {
    await createConfigMaps(http, 7);
    const first = await http.get(`${CMS}?limit=3`);
    assert.equal(first.json.items.length, 3);
    assert.equal(first.json.metadata.remainingItemCount, 4);
    const rv = first.json.metadata.resourceVersion;
    // Changes after the first page must not show up in later pages.
    await http.request("DELETE", `${CMS}/cm-005`);
    await createConfigMaps(http, 0);
    await http.request("POST", CMS, { body: { metadata: { name: "zzz" } } });
    const names = first.json.items.map((i: { metadata: { name: string } }) => i.metadata.name);
    let token = first.json.metadata.continue;
    while (token) {
      const page = await http.get(`${CMS}?limit=3&continue=${encodeURIComponent(token)}`);
      assert.equal(page.status, 200, page.text);
      assert.equal(page.json.metadata.resourceVersion, rv);
      names.push(...page.json.items.map((i: { metadata: { name: string } }) => i.metadata.name));
      token = page.json.metadata.continue;
    }
    assert.deepEqual(names, ["cm-000", "cm-001", "cm-002", "cm-003", "cm-004", "cm-005", "cm-006"]);
    assert.ok(server.store.resourceVersion > Number(rv));
  });
});

Deno.test("built-in lists omit item kinds and carry the list kind", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 1);
    const list = (await http.get(CMS)).json;
    assert.equal(list.kind, "ConfigMapList");
    assert.equal(list.apiVersion, "v1");
    assert.equal(list.items[0].kind, undefined);
  });
});

Deno.test("list resourceVersion rules: continue+version is 400, expired Exact is 410, future is 504", async () => {
  await withServer(async (server, http) => {
    await createConfigMaps(http, 5);
    const first = await http.get(`${CMS}?limit=2`);
    const bad = await http.get(
      `${CMS}?limit=2&resourceVersion=3&continue=${first.json.metadata.continue}`,
    );
    assert.equal(bad.status, 400, "as kube-apiserver answers (checked in tests/conformance)");
    const exactOld = await http.get(`${CMS}?limit=2&resourceVersion=1`);
    assert.equal(exactOld.status, 410);
    assert.equal(exactOld.json.reason, "Expired");
    const future = await http.get(`${CMS}?resourceVersion=${server.store.resourceVersion + 100}`);
    assert.equal(future.status, 504);
    assert.match(future.json.message, /Too large resource version/);
    assert.equal(future.headers.get("retry-after"), "1");
    const exactNow = await http.get(
      `${CMS}?limit=2&resourceVersion=${server.store.resourceVersion}`,
    );
    assert.equal(exactNow.status, 200);
  }, { historySize: 3, tooLargeResourceVersionWaitMs: 100 });
});

Deno.test("an expired continue token is a 410", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 4);
    const first = await http.get(`${CMS}?limit=2`);
    await new Promise((r) => setTimeout(r, 60));
    const next = await http.get(`${CMS}?limit=2&continue=${first.json.metadata.continue}`);
    assert.equal(next.status, 410);
  }, { continueTtlMs: 50 });
});

Deno.test("label and field selectors filter lists; unknown fields are 400", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 2, { app: "web" });
    await http.request("POST", CMS, {
      body: { metadata: { name: "other", labels: { app: "db" } } },
    });
    const web = await http.get(`${CMS}?labelSelector=${encodeURIComponent("app in (web)")}`);
    assert.equal(web.json.items.length, 2);
    const named = await http.get(`${CMS}?fieldSelector=metadata.name%3Dother`);
    assert.deepEqual(named.json.items.map((i: { metadata: { name: string } }) => i.metadata.name), [
      "other",
    ]);
    const unknown = await http.get(`${CMS}?fieldSelector=spec.foo%3Dbar`);
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.message, /"spec.foo" is not a known field selector/);
    const badLabel = await http.get(`${CMS}?labelSelector=a%20in%20b`);
    assert.equal(badLabel.status, 400);
    const pods = await http.get(`/api/v1/pods?fieldSelector=spec.nodeName%3Dn1`);
    assert.equal(pods.status, 200);
  });
});

Deno.test("PUT with a stale resourceVersion is 409 Conflict; get, patch and delete work", async () => {
  await withServer(async (_server, http) => {
    const created =
      (await http.request("POST", CMS, { body: { metadata: { name: "a" }, data: { x: "1" } } }))
        .json;
    const ok = await http.request("PUT", `${CMS}/a`, { body: { ...created, data: { x: "2" } } });
    assert.equal(ok.status, 200);
    const stale = await http.request("PUT", `${CMS}/a`, { body: { ...created, data: { x: "3" } } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.reason, "Conflict");
    const merged = await http.request("PATCH", `${CMS}/a`, {
      body: { data: { y: "1" } },
      contentType: "application/merge-patch+json",
    });
    assert.deepEqual(merged.json.data, { x: "2", y: "1" });
    const json = await http.request("PATCH", `${CMS}/a`, {
      body: [{ op: "remove", path: "/data/x" }],
      contentType: "application/json-patch+json",
    });
    assert.deepEqual(json.json.data, { y: "1" });
    const badTest = await http.request("PATCH", `${CMS}/a`, {
      body: [{ op: "test", path: "/data/y", value: "nope" }],
      contentType: "application/json-patch+json",
    });
    assert.equal(badTest.status, 422);
    const unsupported = await http.request("PATCH", `${CMS}/a`, {
      body: {},
      contentType: "text/plain",
    });
    assert.equal(unsupported.status, 415);
    assert.equal((await http.request("DELETE", `${CMS}/a`)).status, 200);
    const gone = await http.get(`${CMS}/a`);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.message, 'configmaps "a" not found');
  });
});

Deno.test("server-side apply creates, then merges; it needs a fieldManager", async () => {
  await withServer(async (_server, http) => {
    const yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n";
    const missing = await http.request("PATCH", `${CMS}/applied`, {
      body: yaml,
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(missing.status, 422);
    const created = await http.request("PATCH", `${CMS}/applied?fieldManager=test`, {
      body: yaml,
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(created.status, 201);
    const again = await http.request("PATCH", `${CMS}/applied?fieldManager=test`, {
      body: yaml.replace("'1'", "'2'"),
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.data, { a: "2" });
  });
});

Deno.test("writes that disagree with the URL are 400; names must be valid (422)", async () => {
  await withServer(async (_server, http) => {
    const wrongNs = await http.request("POST", CMS, {
      body: { metadata: { name: "x", namespace: "kube-system" } },
    });
    assert.equal(wrongNs.status, 400);
    const wrongKind = await http.request("POST", CMS, {
      body: { apiVersion: "v1", kind: "Secret", metadata: { name: "x" } },
    });
    assert.equal(wrongKind.status, 400);
    const invalid = await http.request("POST", CMS, { body: { metadata: { name: "UPPER" } } });
    assert.equal(invalid.status, 422);
    assert.equal(invalid.json.reason, "Invalid");
    const notJson = await http.request("POST", CMS, { body: "{nope" });
    assert.equal(notJson.status, 400);
    const protobuf = await http.request("POST", CMS, {
      body: "k8s\0",
      contentType: "application/vnd.kubernetes.protobuf",
    });
    assert.equal(protobuf.status, 415);
  });
});

Deno.test("the status subresource is the only way to change status", async () => {
  await withServer(async (_server, http) => {
    const path = "/apis/apps/v1/namespaces/default/deployments";
    const d = (await http.request("POST", path, {
      body: { metadata: { name: "d" }, spec: { replicas: 1 }, status: { replicas: 5 } },
    })).json;
    assert.equal(d.status, undefined);
    const s = await http.request("PUT", `${path}/d/status`, {
      body: { ...d, status: { replicas: 1 } },
    });
    assert.equal(s.status, 200, s.text);
    assert.deepEqual(s.json.status, { replicas: 1 });
    await http.request("POST", CMS, { body: { metadata: { name: "no-scale" } } });
    assert.equal((await http.get(`${CMS}/no-scale/scale`)).status, 404);
    assert.equal((await http.get(`${CMS}/no-scale/status`)).status, 404);
  }, { rollouts: false }); // no controller writes status behind the test's back
});

Deno.test("the scale subresource reads and writes spec.replicas; rollouts complete at once", async () => {
  await withServer(async (_server, http) => {
    const path = "/apis/apps/v1/namespaces/default/deployments";
    await http.request("POST", path, {
      body: {
        metadata: { name: "web" },
        spec: { replicas: 2, selector: { matchLabels: { app: "web", tier: "a" } } },
      },
    });
    const scale = await http.get(`${path}/web/scale`);
    assert.equal(scale.status, 200);
    assert.deepEqual(
      { kind: scale.json.kind, apiVersion: scale.json.apiVersion, spec: scale.json.spec },
      { kind: "Scale", apiVersion: "autoscaling/v1", spec: { replicas: 2 } },
    );
    assert.equal(scale.json.status.selector, "app=web,tier=a");
    const stale = await http.request("PUT", `${path}/web/scale`, {
      body: {
        ...scale.json,
        metadata: { ...scale.json.metadata, resourceVersion: "1" },
        spec: { replicas: 3 },
      },
    });
    assert.equal(stale.status, 409, stale.text);
    const patched = await http.request("PATCH", `${path}/web/scale`, {
      body: { spec: { replicas: 5 } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.spec.replicas, 5);
    const negative = await http.request("PATCH", `${path}/web/scale`, {
      body: { spec: { replicas: -1 } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(negative.status, 422, negative.text);
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 100 && status.observedGeneration !== 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = (await http.get(`${path}/web`)).json.status ?? {};
    }
    assert.deepEqual(
      {
        observedGeneration: status.observedGeneration,
        replicas: status.replicas,
        updatedReplicas: status.updatedReplicas,
        readyReplicas: status.readyReplicas,
        availableReplicas: status.availableReplicas,
        conditions: (status.conditions as { type: string; reason: string }[]).map((c) =>
          `${c.type}=${c.reason}`
        ),
      },
      {
        observedGeneration: 2,
        replicas: 5,
        updatedReplicas: 5,
        readyReplicas: 5,
        availableReplicas: 5,
        conditions: ["Available=MinimumReplicasAvailable", "Progressing=NewReplicaSetAvailable"],
      },
    );
  });
});

Deno.test("watch from a list's resourceVersion streams changes; bookmarks only when allowed", async () => {
  await withServer(async (_server, http) => {
    const list = await http.get(CMS);
    const rv = list.json.metadata.resourceVersion;
    const watching = http.watch(
      `${CMS}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`,
      (events) =>
        events.some((e) => e.type === "DELETED") && events.some((e) => e.type === "BOOKMARK"),
    );
    await new Promise((r) => setTimeout(r, 100));
    await http.request("POST", CMS, { body: { metadata: { name: "w" } } });
    await http.request("PATCH", `${CMS}/w`, {
      body: { data: { a: "1" } },
      contentType: "application/merge-patch+json",
    });
    await http.request("DELETE", `${CMS}/w`);
    const { events } = await watching;
    const types = events.filter((e) => e.type !== "BOOKMARK").map((e) => e.type);
    assert.deepEqual(types, ["ADDED", "MODIFIED", "DELETED"]);
    const bookmark = events.find((e) => e.type === "BOOKMARK")!;
    assert.deepEqual(Object.keys(bookmark.object.metadata as object), ["resourceVersion"]);

    const quiet = await http.watch(
      `${CMS}?watch=true&resourceVersion=${rv}&timeoutSeconds=1`,
      () => false,
    );
    assert.ok(quiet.ended, "timeoutSeconds ends the stream cleanly");
    assert.ok(quiet.events.every((e) => e.type !== "BOOKMARK"), "no bookmarks unless asked for");
  }, { bookmarkIntervalMs: 200 });
});

Deno.test("watch without a resourceVersion starts with synthetic ADDED events", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 3);
    const { events } = await http.watch(`${CMS}?watch=true`, (e) => e.length >= 3);
    assert.deepEqual(events.map((e) => e.type), ["ADDED", "ADDED", "ADDED"]);
  });
});

Deno.test("a watch from a version history no longer covers gets a 410 ERROR event, then ends", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 6);
    const { status, events, ended } = await http.watch(
      `${CMS}?watch=true&resourceVersion=2`,
      () => false,
    );
    assert.equal(status, 200);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, "ERROR");
    assert.equal(events[0]!.object.code, 410);
    assert.equal(events[0]!.object.reason, "Expired");
    assert.ok(ended);
  }, { historySize: 3 });
});

Deno.test("sendInitialEvents is served with the initial-events-end bookmark, or rejected with 422", async () => {
  await withServer(async (_server, http) => {
    await createConfigMaps(http, 2);
    // kube-apiserver validates ListOptions: 422 Invalid, as for any invalid ListOptions.
    const rejected = await http.get(`${CMS}?watch=true&sendInitialEvents=true`);
    assert.equal(rejected.status, 422);
    assert.equal(rejected.json.reason, "Invalid");
    assert.match(
      rejected.json.message,
      /sendInitialEvents requires setting resourceVersionMatch to NotOlderThan/,
    );
    const { events } = await http.watch(
      `${CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`,
      (e) => e.some((x) => x.type === "BOOKMARK"),
    );
    assert.deepEqual(events.map((e) => e.type), ["ADDED", "ADDED", "BOOKMARK"]);
    const meta = events[2]!.object.metadata as { annotations: Record<string, string> };
    assert.equal(meta.annotations["k8s.io/initial-events-end"], "true");
  });
});

Deno.test("watch selectors turn objects that stop matching into DELETED events", async () => {
  await withServer(async (_server, http) => {
    const rv = (await http.get(CMS)).json.metadata.resourceVersion;
    const watching = http.watch(
      `${CMS}?watch=true&resourceVersion=${rv}&labelSelector=app%3Dweb`,
      (e) => e.length >= 2,
    );
    await new Promise((r) => setTimeout(r, 100));
    await http.request("POST", CMS, { body: { metadata: { name: "s", labels: { app: "web" } } } });
    await http.request("PATCH", `${CMS}/s`, {
      body: { metadata: { labels: { app: "db" } } },
      contentType: "application/merge-patch+json",
    });
    const { events } = await watching;
    assert.deepEqual(events.map((e) => e.type), ["ADDED", "DELETED"]);
  });
});

Deno.test("tables for kubectl carry columns and rows", async () => {
  await withServer(async (_server, http) => {
    const t = await http.get(
      "/api/v1/namespaces",
      "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    );
    assert.equal(t.json.kind, "Table");
    assert.deepEqual(t.json.columnDefinitions.map((c: { name: string }) => c.name), [
      "Name",
      "Status",
      "Age",
    ]);
    assert.equal(t.json.rows.length, 4);
    assert.equal(t.json.rows[0].object.kind, "PartialObjectMetadata");
  });
});

Deno.test("fault: stop refuses connections until start", async () => {
  await withServer(async (server, http) => {
    await server.stop();
    await assert.rejects(http.get("/"), (e: Error) => /refused/i.test(String(e.cause)));
    await server.start();
    assert.equal((await http.get("/")).status, 200);
  });
});

Deno.test("fault: a hung server accepts connections and never answers", async () => {
  await withServer(async (server, http) => {
    await server.hang(true);
    await assert.rejects(
      http.request("GET", "/", { timeoutMs: 300 }),
      (e: Error) => e.name === "TimeoutError",
    );
    await server.hang(false);
    assert.equal((await http.get("/")).status, 200);
  });
});

Deno.test("fault: hang() returns at once even with keep-alive connections open", async () => {
  await withServer(async (server, http) => {
    assert.equal((await http.get("/")).status, 200); // leaves a pooled keep-alive connection
    const started = performance.now();
    await server.hang(true);
    assert.ok(performance.now() - started < 1_000, "hang(true) did not wait for open connections");
    // The pooled connection may be dropped as idle; a fresh one is accepted and never answered.
    await http.request("GET", "/", { timeoutMs: 300 }).catch(() => {});
    await using other = new SimHttp(server);
    await assert.rejects(
      other.request("GET", "/", { timeoutMs: 300 }),
      (e: Error) => e.name === "TimeoutError",
    );
    await server.hang(false);
    await using fresh = new SimHttp(server);
    assert.equal((await fresh.get("/")).status, 200);
  });
});

Deno.test("fault: latency delays headers; slow bodies trickle", async () => {
  await withServer(async (server, http) => {
    server.setFaults({ latencyMs: 200 });
    let started = performance.now();
    await http.get("/version");
    assert.ok(performance.now() - started >= 190);
    server.setFaults({ latencyMs: 0, slowBody: { chunkBytes: 16, intervalMs: 20 } });
    started = performance.now();
    const r = await http.get("/version");
    assert.equal(r.json.major, "1");
    assert.ok(
      performance.now() - started >= 100,
      "a 200-byte body in 16-byte chunks takes > 100 ms",
    );
  });
});

Deno.test("fault: error rate answers with Status errors and Retry-After", async () => {
  await withServer(async (server, http) => {
    server.setFaults({ errorRate: { rate: 1, codes: [503], retryAfterSeconds: 7 } });
    const r = await http.get("/api/v1/namespaces");
    assert.equal(r.status, 503);
    assert.equal(r.json.reason, "ServiceUnavailable");
    assert.equal(r.headers.get("retry-after"), "7");
    server.setFaults({ errorRate: { rate: 1, codes: [429], retryAfterSeconds: 2 } });
    assert.equal((await http.get("/")).status, 429);
    await server.clearFaults();
    assert.equal((await http.get("/")).status, 200);
  });
});

Deno.test("fault: rotated credentials make the old ones 401", async () => {
  await withServer(async (server, http) => {
    let notified = 0;
    server.onCredentialsChanged(() => notified++);
    await server.rotateCredentials();
    assert.equal((await http.get("/")).status, 401);
    await using fresh = new SimHttp(server);
    assert.equal((await fresh.get("/")).status, 200);
    assert.equal(notified, 1);
  });
});

Deno.test("fault: a rotated CA fails TLS verification for clients trusting the old one", async () => {
  await withServer(async (server) => {
    const oldCa = server.credentials().caPem;
    await server.rotateCA();
    await using stale = new SimHttp(server, "certificate", oldCa);
    await assert.rejects(
      stale.get("/"),
      (e: Error) => /certificate|tls|UnknownIssuer/i.test(String(e) + (e.cause ?? "")),
    );
    await using fresh = new SimHttp(server);
    assert.equal((await fresh.get("/")).status, 200);
  });
});

Deno.test("fault: silenced watches stay open and say nothing; drop ends them", async () => {
  await withServer(async (server, http) => {
    server.setFaults({ silenceWatches: true });
    const watching = http.watch(`${CMS}?watch=true&allowWatchBookmarks=true`, () => false, 800);
    await new Promise((r) => setTimeout(r, 100));
    await http.request("POST", CMS, { body: { metadata: { name: "unseen" } } });
    const { events, ended } = await watching;
    assert.equal(events.length, 0);
    assert.equal(ended, false);
  }, { bookmarkIntervalMs: 50 });
});

Deno.test("fault: dropWatches('reset') cuts streams mid-flight; 'close' ends them cleanly", async () => {
  await withServer(async (server, http) => {
    const closing = http.watch(`${CMS}?watch=true`, () => false);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.dropWatches("close"), 1);
    assert.equal((await closing).ended, true);
    const resetting = http.watch(`${CMS}?watch=true`, () => false).catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.dropWatches("reset"), 1);
    const result = await resetting;
    assert.ok(result instanceof Error || result.ended === false, "a reset is not a clean end");
  });
});

Deno.test("fault: restart with a version jump makes old watches 410", async () => {
  await withServer(async (server) => {
    const rv = server.store.resourceVersion;
    await server.restart("jump");
    await using fresh = new SimHttp(server);
    const { events } = await fresh.watch(
      `${CMS}?watch=true&resourceVersion=${rv}`,
      (e) => e.length > 0,
    );
    assert.equal(events[0]!.object.code, 410);
  });
});

Deno.test("fault: a removed kind leaves discovery and answers 404; forbidden kinds answer 403", async () => {
  await withServer(async (server, http) => {
    server.setFaults({ removedKinds: ["apps/deployments"], forbiddenKinds: ["configmaps"] });
    const apps = (await http.get("/apis/apps/v1")).json.resources.map((r: { name: string }) =>
      r.name
    );
    assert.ok(!apps.includes("deployments"));
    assert.equal((await http.get("/apis/apps/v1/deployments")).status, 404);
    const forbidden = await http.get(CMS);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json.reason, "Forbidden");
  });
});

Deno.test("fault: a watcher that cannot keep up is closed without an ERROR event", async () => {
  await withServer(async (server, http) => {
    // The client stops reading; once the transport's windows and buffers are full, the server's
    // backlog for this watcher passes the limit and it is dropped (kube-apiserver's cacher does so
    // when a watcher's channel stays full).
    const response = await http.open(`${CMS}?watch=true`, AbortSignal.timeout(30_000));
    await waitFor(() => server.openWatches === 1);
    const written = 4000;
    await server.flood({ count: written, payloadBytes: 4000 });
    await waitFor(() => server.openWatches === 0);
    const text = await response.text(); // ends: the server closed it cleanly
    const events = text.trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(events.every((e) => e.type !== "ERROR"));
    assert.ok(events.length < written, `${events.length} of ${written} events were delivered`);
  }, { maxWatchBufferBytes: 64 * 1024 });
});

Deno.test("the request log records what clients sent", async () => {
  await withServer(async (server, http) => {
    const since = Date.now();
    await http.get("/");
    await http.get(CMS);
    assert.deepEqual(server.requestsSince(since).map((r) => r.path), ["/", CMS]);
  });
});

Deno.test("OpenAPI v2 is served as JSON; a client that takes only protobuf gets a 406", async () => {
  await withServer(async (_server, http) => {
    const json = await http.get("/openapi/v2", "application/json");
    assert.equal(json.status, 200);
    assert.equal(json.json.swagger, "2.0");
    const protobuf = await http.get(
      "/openapi/v2",
      "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    );
    assert.equal(protobuf.status, 406);
    assert.equal(protobuf.json.reason, "NotAcceptable");
  });
});
