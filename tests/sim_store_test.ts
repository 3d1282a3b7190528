import assert from "node:assert/strict";
import { ObjectStore, type StoreEvent } from "../testing/sim/object_store.ts";
import { BUILTIN_TYPES, CLUSTER_TYPE, NAMESPACE_TYPE } from "../testing/sim/resource_types.ts";
import { StatusError } from "../testing/sim/status.ts";

const CM = BUILTIN_TYPES.find((t) => t.kind === "ConfigMap")!;
const DEPLOY = BUILTIN_TYPES.find((t) => t.kind === "Deployment")!;

function store(historySize = 1000): ObjectStore {
  const s = new ObjectStore(historySize);
  s.create(NAMESPACE_TYPE, { metadata: { name: "default" } });
  return s;
}

function statusCode(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    if (error instanceof StatusError) return error.status.code;
    throw error;
  }
  return 0;
}

Deno.test("create() fills uid, resourceVersion and creationTimestamp; versions are monotonic across kinds", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" } });
  const b = s.create(DEPLOY, {
    metadata: { name: "b", namespace: "default" },
    spec: { replicas: 1 },
  });
  assert.match(a.metadata!.uid!, /^[0-9a-f-]{36}$/);
  assert.match(a.metadata!.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Number(b.metadata!.resourceVersion) > Number(a.metadata!.resourceVersion));
  assert.equal(b.metadata!.generation, 1);
  assert.equal(a.metadata!.generation, undefined);
  assert.equal(s.resourceVersion, Number(b.metadata!.resourceVersion));
});

Deno.test("create() resolves generateName to distinct names", () => {
  const s = store();
  const names = new Set<string>();
  for (let i = 0; i < 50; i++) {
    names.add(
      s.create(CM, { metadata: { generateName: "gen-", namespace: "default" } }).metadata!.name!,
    );
  }
  assert.equal(names.size, 50);
  for (const name of names) assert.match(name, /^gen-[a-z0-9]{5}$/);
});

Deno.test("create() rejects duplicates (409), missing namespaces (404) and bad names (422)", () => {
  const s = store();
  s.create(CM, { metadata: { name: "a", namespace: "default" } });
  assert.equal(
    statusCode(() => s.create(CM, { metadata: { name: "a", namespace: "default" } })),
    409,
  );
  assert.equal(statusCode(() => s.create(CM, { metadata: { name: "a", namespace: "nope" } })), 404);
  assert.equal(
    statusCode(() => s.create(CM, { metadata: { name: "Bad_Name", namespace: "default" } })),
    422,
  );
  assert.equal(statusCode(() => s.create(CM, { metadata: { namespace: "default" } })), 422);
});

Deno.test("update() with a stale resourceVersion is a 409 Conflict", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" }, data: { x: "1" } });
  s.update(CM, { ...a, data: { x: "2" } });
  assert.equal(statusCode(() => s.update(CM, { ...a, data: { x: "3" } })), 409);
});

Deno.test("update() that changes nothing keeps the resourceVersion and emits no event", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" }, data: { x: "1" } });
  const events: StoreEvent[] = [];
  s.subscribe((e) => events.push(e));
  const same = s.update(CM, structuredClone(a));
  assert.equal(same.metadata!.resourceVersion, a.metadata!.resourceVersion);
  assert.equal(events.length, 0);
});

Deno.test("generation bumps on spec changes only; status is written only through the subresource", () => {
  const s = store();
  const d = s.create(DEPLOY, {
    metadata: { name: "d", namespace: "default" },
    spec: { replicas: 1 },
    status: { ready: 9 },
  });
  assert.equal(
    d.status,
    undefined,
    "status on create is dropped for kinds with a status subresource",
  );
  const labelled = s.update(DEPLOY, { ...d, metadata: { ...d.metadata, labels: { a: "b" } } });
  assert.equal(labelled.metadata!.generation, 1);
  const scaled = s.update(DEPLOY, { ...labelled, spec: { replicas: 2 }, status: { ready: 5 } });
  assert.equal(scaled.metadata!.generation, 2);
  assert.equal(scaled.status, undefined);
  const withStatus = s.update(DEPLOY, { ...scaled, spec: { replicas: 7 }, status: { ready: 2 } }, {
    subresource: "status",
  });
  assert.deepEqual(withStatus.status, { ready: 2 });
  assert.deepEqual(withStatus.spec, { replicas: 2 });
  assert.equal(withStatus.metadata!.generation, 2);
});

Deno.test("delete() with finalizers marks deletion; removing the last finalizer deletes", () => {
  const s = store();
  const events: StoreEvent[] = [];
  s.subscribe((e) => events.push(e));
  s.create(CM, { metadata: { name: "f", namespace: "default", finalizers: ["x/y"] } });
  const marked = s.delete(CM, "default", "f");
  assert.ok(marked.metadata!.deletionTimestamp);
  assert.ok(s.get(CM, "default", "f"));
  assert.equal(
    statusCode(() =>
      s.update(CM, { ...marked, metadata: { ...marked.metadata, finalizers: ["x/y", "z"] } })
    ),
    422,
  );
  s.update(CM, { ...marked, metadata: { ...marked.metadata, finalizers: [] } });
  assert.equal(s.get(CM, "default", "f"), undefined);
  assert.deepEqual(events.map((e) => e.type), ["ADDED", "MODIFIED", "DELETED"]);
});

Deno.test("delete() checks uid and resourceVersion preconditions", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" } });
  assert.equal(statusCode(() => s.delete(CM, "default", "a", { uid: "other" })), 409);
  assert.equal(statusCode(() => s.delete(CM, "default", "a", { resourceVersion: "1" })), 409);
  s.delete(CM, "default", "a", { uid: a.metadata!.uid! });
  assert.equal(statusCode(() => s.delete(CM, "default", "a")), 404);
});

Deno.test("deleting a namespace deletes what it holds", () => {
  const s = store();
  s.create(NAMESPACE_TYPE, { metadata: { name: "team" } });
  s.create(CM, { metadata: { name: "a", namespace: "team" } });
  s.create(CM, { metadata: { name: "b", namespace: "default" } });
  s.delete(NAMESPACE_TYPE, "", "team");
  assert.deepEqual(s.list(CM).map((o) => o.metadata!.name), ["b"]);
});

Deno.test("eventsSince() replays history and reports expired once evicted", () => {
  const s = store(3);
  const start = s.resourceVersion;
  for (let i = 0; i < 5; i++) s.create(CM, { metadata: { name: `c${i}`, namespace: "default" } });
  assert.equal(s.eventsSince(CM, start), "expired");
  const recent = s.eventsSince(CM, s.resourceVersion - 2);
  assert.ok(recent !== "expired");
  assert.deepEqual(recent.map((e) => e.object.metadata!.name), ["c3", "c4"]);
});

Deno.test("history is kept per resource: a flood of one kind does not expire another's", () => {
  const s = store(3);
  s.create(CM, { metadata: { name: "quiet", namespace: "default" } });
  const quietSince = s.resourceVersion;
  s.create(NAMESPACE_TYPE, { metadata: { name: "team" } });
  for (let i = 0; i < 10; i++) s.create(NAMESPACE_TYPE, { metadata: { name: `ns-${i}` } });
  assert.equal(s.eventsSince(NAMESPACE_TYPE, quietSince), "expired");
  assert.deepEqual(s.eventsSince(CM, quietSince), [], "ConfigMaps' history still reaches back");
  assert.ok(s.listAt(CM, quietSince), "and so do lists at that version");
});

Deno.test("listAt() rebuilds a past state from history", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" }, data: { v: "1" } });
  const at = s.resourceVersion;
  s.update(CM, { ...a, data: { v: "2" } });
  s.create(CM, { metadata: { name: "b", namespace: "default" } });
  s.delete(CM, "default", "a");
  const past = s.listAt(CM, at)!;
  assert.deepEqual(past.map((o) => [o.metadata!.name, o.data]), [["a", { v: "1" }]]);
  assert.equal(s.listAt(CM, s.resourceVersion + 1), undefined);
});

Deno.test("restart('reset') restarts versions with new UIDs; restart('jump') expires old versions", () => {
  const s = store();
  const a = s.create(CM, { metadata: { name: "a", namespace: "default" } });
  let current = a;
  for (let i = 0; i < 10; i++) current = s.update(CM, { ...current, data: { i: String(i) } });
  const before = s.resourceVersion;
  s.restart("reset");
  assert.ok(s.resourceVersion < before);
  assert.notEqual(s.get(CM, "default", "a")!.metadata!.uid, a.metadata!.uid);
  const mid = s.resourceVersion;
  s.restart("jump");
  assert.ok(s.resourceVersion >= mid + 1_000_000);
  assert.equal(s.eventsSince(CM, mid), "expired");
});

Deno.test("Cluster objects convert between v1beta2 storage and v1beta1", () => {
  const stored = {
    apiVersion: "cluster.x-k8s.io/v1beta2",
    kind: "Cluster",
    metadata: { name: "c" },
    status: { initialization: { infrastructureProvisioned: true } },
  };
  const v1 = CLUSTER_TYPE.convert!(stored, "v1beta1");
  assert.equal(v1.apiVersion, "cluster.x-k8s.io/v1beta1");
  assert.deepEqual(v1.status, { infrastructureReady: true });
  assert.deepEqual(CLUSTER_TYPE.convert!(v1, "v1beta2").status, stored.status);
});
