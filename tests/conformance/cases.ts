/**
 * The API behaviours this library relies on, written once and run against the simulator
 * (tests/conformance_sim_test.ts, in `deno task test`) and a real kube-apiserver
 * (tests/real/conformance.ts, in `deno task test:real`). Every assertion is what
 * kube-apiserver does; where the simulator differs, the simulator is wrong.
 */
import assert from "node:assert/strict";
import type { Target, WireEvent } from "./target.ts";

type Obj = {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    uid: string;
    generation?: number;
    labels?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    managedFields?: { manager: string; operation: string }[];
  };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
};
type List = {
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: Obj[];
};
type Status = {
  kind: string;
  status: string;
  reason: string;
  code: number;
  message: string;
  details?: {
    name?: string;
    kind?: string;
    group?: string;
    causes?: { field?: string; reason?: string }[];
  };
};

/** One behaviour. `ns` is a namespace of its own, already created. */
export interface ConformanceCase {
  name: string;
  run(t: Target, ns: string): Promise<void>;
}

const cms = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;
const clusters = (ns: string) => `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters`;

function configMap(name: string, extra: Record<string, unknown> = {}) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...extra }, data: { a: "1" } };
}

async function createConfigMaps(t: Target, ns: string, names: string[]): Promise<Obj[]> {
  const out: Obj[] = [];
  for (const name of names) out.push(await t.ok<Obj>("POST", cms(ns), { body: configMap(name) }));
  return out;
}

const names = (list: { items: Obj[] }) => list.items.map((o) => o.metadata.name);

export const cases: ConformanceCase[] = [
  {
    name: "discovery: core v1 and API groups list their resources and verbs",
    async run(t) {
      const api = await t.ok<{ kind: string; versions: string[] }>("GET", "/api");
      assert.equal(api.kind, "APIVersions");
      assert.ok(api.versions.includes("v1"));
      const v1 = await t.ok<
        { resources: { name: string; namespaced: boolean; verbs: string[]; kind: string }[] }
      >(
        "GET",
        "/api/v1",
      );
      const configmaps = v1.resources.find((r) => r.name === "configmaps")!;
      assert.equal(configmaps.kind, "ConfigMap");
      assert.equal(configmaps.namespaced, true);
      for (const verb of ["create", "delete", "get", "list", "patch", "update", "watch"]) {
        assert.ok(configmaps.verbs.includes(verb), `configmaps verb ${verb}`);
      }
      assert.ok(v1.resources.some((r) => r.name === "nodes" && !r.namespaced));
      const groups = await t.ok<
        { groups: { name: string; preferredVersion: { version: string } }[] }
      >(
        "GET",
        "/apis",
      );
      assert.ok(groups.groups.some((g) => g.name === "apps"));
      const capi = groups.groups.find((g) => g.name === "cluster.x-k8s.io");
      assert.equal(capi?.preferredVersion.version, "v1beta2");
    },
  },
  {
    name:
      "resourceVersion rules: list, Exact and NotOlderThan, and resourceVersionMatch alone is 422",
    async run(t, ns) {
      const [a] = await createConfigMaps(t, ns, ["a"]);
      const list = await t.ok<List>("GET", cms(ns));
      assert.ok(BigInt(list.metadata.resourceVersion) >= BigInt(a!.metadata.resourceVersion));
      const exact = await t.request<List>("GET", cms(ns), {
        query: { resourceVersion: list.metadata.resourceVersion, resourceVersionMatch: "Exact" },
      });
      assert.equal(exact.status, 200);
      assert.deepEqual(names(exact.body), ["a"]);
      const notOlder = await t.request<List>("GET", cms(ns), {
        query: { resourceVersion: "0", resourceVersionMatch: "NotOlderThan" },
      });
      assert.equal(notOlder.status, 200);
      const alone = await t.request<Status>("GET", cms(ns), {
        query: { resourceVersionMatch: "Exact" },
      });
      assert.equal(alone.status, 422);
      assert.equal(alone.body.reason, "Invalid");
    },
  },
  {
    name: "paging: limit and continue give every object once, with remainingItemCount",
    async run(t, ns) {
      await createConfigMaps(t, ns, ["p1", "p2", "p3", "p4", "p5"]);
      const first = await t.ok<List>("GET", cms(ns), { query: { limit: "2" } });
      assert.equal(first.items.length, 2);
      assert.ok(first.metadata.continue);
      assert.equal(first.metadata.remainingItemCount, 3);
      const seen = names(first);
      let token: string | undefined = first.metadata.continue;
      while (token) {
        const page: List = await t.ok<List>("GET", cms(ns), {
          query: { limit: "2", continue: token },
        });
        seen.push(...names(page));
        // Every page of one list is at the first page's resourceVersion.
        assert.equal(page.metadata.resourceVersion, first.metadata.resourceVersion);
        token = page.metadata.continue;
      }
      assert.deepEqual(seen, ["p1", "p2", "p3", "p4", "p5"]);
      const withVersion = await t.request<Status>("GET", cms(ns), {
        query: { limit: "2", continue: first.metadata.continue!, resourceVersion: "1" },
      });
      assert.equal(withVersion.status, 400, "continue with a resourceVersion");
      const bad = await t.request<Status>("GET", cms(ns), { query: { limit: "1", continue: "x" } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.reason, "BadRequest");
    },
  },
  {
    name: "watch from a resourceVersion delivers what happened after it, in order",
    async run(t, ns) {
      const [a] = await createConfigMaps(t, ns, ["w"]);
      await t.ok("PATCH", `${cms(ns)}/w`, {
        body: { data: { a: "2" } },
        contentType: "application/merge-patch+json",
      });
      await t.ok("DELETE", `${cms(ns)}/w`);
      const { status, events } = await t.watch(
        cms(ns),
        { resourceVersion: a!.metadata.resourceVersion },
        (e) => e.filter((x) => x.type !== "BOOKMARK").length >= 2,
      );
      assert.equal(status, 200);
      assert.deepEqual(
        events.filter((e) => e.type !== "BOOKMARK").map((e) =>
          `${e.type} ${e.object.metadata?.name}`
        ),
        ["MODIFIED w", "DELETED w"],
      );
    },
  },
  {
    // Where the WatchList feature is off (1.27-1.31 by default), the server refuses it: the
    // library then lists in pages (reflector.ts), from what the server said, not from its version.
    name:
      "sendInitialEvents: existing objects as ADDED, then the initial-events-end bookmark; refused with 422 Invalid where WatchList is off",
    async run(t, ns) {
      await createConfigMaps(t, ns, ["i1", "i2"]);
      const probe = await t.request<Status>("GET", cms(ns), {
        query: {
          watch: "true",
          sendInitialEvents: "true",
          resourceVersionMatch: "NotOlderThan",
          timeoutSeconds: "1",
        },
      });
      if (probe.status === 422) {
        const body = probe.body as unknown as {
          reason?: string;
          details?: { causes?: { field?: string; message?: string }[] };
        };
        assert.equal(body.reason, "Invalid");
        const cause = body.details?.causes?.find((c) => c.field === "sendInitialEvents");
        assert.match(cause?.message ?? "", /WatchList feature gate/);
        console.error(`WatchList on ${t.name}: refused (422 Invalid: the feature gate is off)`);
        return;
      }
      console.error(`WatchList on ${t.name}: streamed`);
      const { status, events } = await t.watch(
        cms(ns),
        {
          sendInitialEvents: "true",
          resourceVersionMatch: "NotOlderThan",
          allowWatchBookmarks: "true",
        },
        (e) => e.some((x) => x.type === "BOOKMARK"),
      );
      assert.equal(status, 200);
      const bookmark = events.find((e) => e.type === "BOOKMARK");
      // What the server sent instead (types, and an ERROR's Status reason and code: no content).
      const seen = events.map((e) =>
        e.type === "ERROR"
          ? `ERROR ${(e.object as { reason?: string }).reason} ${
            (e.object as { code?: number }).code
          }`
          : e.type
      );
      assert.ok(
        bookmark,
        `the bookmark came (the stream ended after: ${seen.join(", ") || "nothing"})`,
      );
      assert.equal(bookmark.object.metadata?.annotations?.["k8s.io/initial-events-end"], "true");
      assert.ok(bookmark.object.metadata?.resourceVersion);
      const added = events.filter((e) => e.type === "ADDED").map((e) => e.object.metadata?.name);
      assert.deepEqual(added.sort(), ["i1", "i2"]);
      assert.equal(events.at(-1)?.type, "BOOKMARK", "nothing before the bookmark but ADDED");
      const withoutMatch = await t.request<Status>("GET", cms(ns), {
        query: { watch: "true", sendInitialEvents: "true" },
      });
      assert.equal(withoutMatch.status, 422, "sendInitialEvents needs resourceVersionMatch");
    },
  },
  {
    // Read from etcd (kube-apiserver's watch cache is off for PodTemplates in the real fleet): with
    // the cache on, the server answers these from memory until events age out of its window.
    name: "after compaction: Exact list and continue are 410 Expired, a watch gets an ERROR event",
    async run(t, ns) {
      const templates = `/api/v1/namespaces/${ns}/podtemplates`;
      const template = (name: string) => ({
        apiVersion: "v1",
        kind: "PodTemplate",
        metadata: { name },
        template: { spec: { containers: [{ name: "c", image: "busybox" }] } },
      });
      for (const name of ["old-0", "old-1", "old-2"]) {
        await t.ok("POST", templates, { body: template(name) });
      }
      const before = await t.ok<List>("GET", templates, { query: { limit: "1" } });
      // Enough writes to move any bounded history past it, then a compaction where there is one.
      for (let i = 0; i < 60; i++) await t.ok("POST", templates, { body: template(`new-${i}`) });
      await t.compact();
      const exact = await t.request<Status>("GET", templates, {
        query: { resourceVersion: before.metadata.resourceVersion, resourceVersionMatch: "Exact" },
      });
      assert.equal(exact.status, 410);
      assert.equal(exact.body.reason, "Expired");
      const next = await t.request<Status>("GET", templates, {
        query: { limit: "1", continue: before.metadata.continue! },
      });
      assert.equal(next.status, 410);
      assert.equal(next.body.reason, "Expired");
      const { status, events } = await t.watch(
        templates,
        { resourceVersion: before.metadata.resourceVersion },
        (e) => e.length > 0,
      );
      assert.equal(status, 200, "the error comes inside the stream");
      assert.deepEqual(events.map((e) => e.type), ["ERROR"]);
      assert.equal(events[0]!.object.code, 410);
      assert.equal(events[0]!.object.reason, "Expired");
    },
  },
  {
    name: "label selectors: equality, sets and existence",
    async run(t, ns) {
      for (const [name, app] of [["l1", "web"], ["l2", "db"], ["l3", undefined]] as const) {
        await t.ok("POST", cms(ns), {
          body: configMap(name, app ? { labels: { app } } : {}),
        });
      }
      const select = async (labelSelector: string) =>
        names(await t.ok<List>("GET", cms(ns), { query: { labelSelector } }));
      assert.deepEqual(await select("app=web"), ["l1"]);
      assert.deepEqual(await select("app in (web,db)"), ["l1", "l2"]);
      assert.deepEqual(await select("app notin (web)"), ["l2", "l3"]);
      assert.deepEqual(await select("!app"), ["l3"]);
      assert.deepEqual(await select("app"), ["l1", "l2"]);
      const bad = await t.request<Status>("GET", cms(ns), {
        query: { labelSelector: "app in (web" },
      });
      assert.equal(bad.status, 400);
    },
  },
  {
    name: "field selectors: metadata.name works, an unknown field is a 400",
    async run(t, ns) {
      await createConfigMaps(t, ns, ["f1", "f2"]);
      const one = await t.ok<List>("GET", cms(ns), {
        query: { fieldSelector: "metadata.name=f2" },
      });
      assert.deepEqual(names(one), ["f2"]);
      const not = await t.ok<List>("GET", cms(ns), {
        query: { fieldSelector: "metadata.name!=f2" },
      });
      assert.deepEqual(names(not), ["f1"]);
      const bad = await t.request<Status>("GET", cms(ns), { query: { fieldSelector: "data.a=1" } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.reason, "BadRequest");
      const pods = await t.request<List>("GET", `/api/v1/namespaces/${ns}/pods`, {
        query: { fieldSelector: "spec.nodeName=n1" },
      });
      assert.equal(pods.status, 200, "Pods have spec.nodeName");
    },
  },
  {
    name: "Status bodies: NotFound, AlreadyExists, Invalid with causes, Conflict",
    async run(t, ns) {
      const missing = await t.request<Status>("GET", `${cms(ns)}/nope`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.kind, "Status");
      assert.equal(missing.body.status, "Failure");
      assert.equal(missing.body.reason, "NotFound");
      assert.equal(missing.body.code, 404);
      assert.equal(missing.body.message, 'configmaps "nope" not found');
      assert.equal(missing.body.details?.name, "nope");
      assert.equal(missing.body.details?.kind, "configmaps");
      const [a] = await createConfigMaps(t, ns, ["s"]);
      const again = await t.request<Status>("POST", cms(ns), { body: configMap("s") });
      assert.equal(again.status, 409);
      assert.equal(again.body.reason, "AlreadyExists");
      assert.equal(again.body.message, 'configmaps "s" already exists');
      const invalid = await t.request<Status>("POST", cms(ns), { body: configMap("Not_Valid") });
      assert.equal(invalid.status, 422);
      assert.equal(invalid.body.reason, "Invalid");
      assert.ok(invalid.body.details?.causes?.some((c) => c.field === "metadata.name"));
      // An update that changes nothing keeps the resourceVersion: change something.
      await t.ok("PUT", `${cms(ns)}/s`, {
        body: { ...configMap("s"), metadata: a!.metadata, data: { a: "2" } },
      });
      const stale = await t.request<Status>("PUT", `${cms(ns)}/s`, {
        body: { ...configMap("s"), metadata: a!.metadata },
      });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.reason, "Conflict");
      assert.match(stale.body.message, /the object has been modified/);
    },
  },
  {
    name: "patches: merge, JSON and strategic merge on built-ins; strategic merge on a CRD is 415",
    async run(t, ns) {
      await createConfigMaps(t, ns, ["m"]);
      const path = `${cms(ns)}/m`;
      const merged = await t.ok<Obj>("PATCH", path, {
        body: { data: { b: "2", a: null } },
        contentType: "application/merge-patch+json",
      });
      assert.deepEqual(merged.data, { b: "2" });
      const json = await t.ok<Obj>("PATCH", path, {
        body: [{ op: "add", path: "/data/c", value: "3" }],
        contentType: "application/json-patch+json",
      });
      assert.deepEqual(json.data, { b: "2", c: "3" });
      const failed = await t.request<Status>("PATCH", path, {
        body: [{ op: "test", path: "/data/c", value: "wrong" }],
        contentType: "application/json-patch+json",
      });
      assert.equal(failed.status, 422, "a failed JSON patch test");
      const strategic = await t.ok<Obj>("PATCH", path, {
        body: { data: { d: "4" } },
        contentType: "application/strategic-merge-patch+json",
      });
      assert.deepEqual(strategic.data, { b: "2", c: "3", d: "4" });
      await t.ok("POST", clusters(ns), {
        body: { apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster", metadata: { name: "c" } },
      });
      const crd = await t.request<Status>("PATCH", `${clusters(ns)}/c`, {
        body: { spec: { paused: true } },
        contentType: "application/strategic-merge-patch+json",
      });
      assert.equal(crd.status, 415);
      assert.equal(crd.body.reason, "UnsupportedMediaType");
    },
  },
  {
    name: "strategic merge: lists merge by their patch merge key; primitive merge lists union",
    async run(t, ns) {
      const deployments = `/apis/apps/v1/namespaces/${ns}/deployments`;
      await t.ok("POST", deployments, {
        body: {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "sm", finalizers: ["example.com/a"] },
          spec: {
            selector: { matchLabels: { app: "sm" } },
            template: {
              metadata: { labels: { app: "sm" } },
              spec: {
                containers: [
                  {
                    name: "app",
                    image: "app:1",
                    ports: [{ containerPort: 80, name: "http" }],
                    env: [{ name: "A", value: "1" }],
                  },
                  { name: "sidecar", image: "sidecar:1" },
                ],
              },
            },
          },
        },
      });
      type Container = {
        name: string;
        image: string;
        ports?: { containerPort: number; name?: string }[];
        env?: { name: string; value: string }[];
      };
      type Deployment = Obj & { spec: { template: { spec: { containers: Container[] } } } };
      const patched = await t.ok<Deployment>("PATCH", `${deployments}/sm`, {
        body: {
          metadata: { finalizers: ["example.com/b"] },
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: "app",
                    image: "app:2",
                    ports: [{ containerPort: 443, name: "https" }],
                    env: [{ name: "B", value: "2" }],
                  },
                  { name: "sidecar", $patch: "delete" },
                  { name: "extra", image: "extra:1" },
                ],
              },
            },
          },
        },
        contentType: "application/strategic-merge-patch+json",
      });
      assert.deepEqual(patched.metadata.finalizers, ["example.com/b", "example.com/a"]);
      const containers = patched.spec.template.spec.containers;
      assert.deepEqual(containers.map((c) => c.name), ["app", "extra"]);
      const app = containers[0]!;
      assert.equal(app.image, "app:2");
      assert.deepEqual(app.ports!.map((p) => p.containerPort).sort(), [443, 80]);
      assert.deepEqual(app.env!.map((e) => e.name), ["B", "A"]);
    },
  },
  {
    name: "server-side apply: field managers, conflicts without force, removed fields",
    async run(t, ns) {
      const path = `${cms(ns)}/ssa`;
      const apply = (manager: string, data: Record<string, string>, force = false) =>
        t.request<Obj & Status>("PATCH", path, {
          body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ssa" }, data },
          contentType: "application/apply-patch+yaml",
          query: { fieldManager: manager, ...(force ? { force: "true" } : {}) },
        });
      const created = await apply("alice", { a: "1", b: "2" });
      assert.equal(created.status, 201, "apply creates");
      assert.ok(
        created.body.metadata.managedFields?.some((m) =>
          m.manager === "alice" && m.operation === "Apply"
        ),
      );
      const conflict = await apply("bob", { a: "other" });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.reason, "Conflict");
      const forced = await apply("bob", { a: "other" }, true);
      assert.equal(forced.status, 200);
      assert.deepEqual(forced.body.data, { a: "other", b: "2" });
      // alice no longer owns a; applying without b removes b, which only she owned.
      const removed = await apply("alice", {});
      assert.equal(removed.status, 200);
      assert.deepEqual(removed.body.data, { a: "other" });
      const noManager = await t.request<Status>("PATCH", path, {
        body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ssa" } },
        contentType: "application/apply-patch+yaml",
      });
      assert.equal(noManager.status, 422, "apply needs a fieldManager");
    },
  },
  {
    name: "defaulting: a Secret without a type is Opaque; a Namespace is Active",
    async run(t, ns) {
      const secret = await t.ok<{ type?: string }>("POST", `/api/v1/namespaces/${ns}/secrets`, {
        body: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { p: btoa("q") } },
      });
      assert.equal(secret.type, "Opaque");
      const namespace = await t.ok<{ status?: { phase?: string } }>(
        "GET",
        `/api/v1/namespaces/${ns}`,
      );
      assert.equal(namespace.status?.phase, "Active");
    },
  },
  {
    name: "finalizers: delete sets deletionTimestamp; removing the last finalizer deletes",
    async run(t, ns) {
      await t.ok("POST", cms(ns), {
        body: configMap("fin", { finalizers: ["example.com/keep"] }),
      });
      const deleting = await t.request<Obj>("DELETE", `${cms(ns)}/fin`);
      assert.equal(deleting.status, 200);
      assert.ok(deleting.body.metadata.deletionTimestamp);
      const still = await t.ok<Obj>("GET", `${cms(ns)}/fin`);
      assert.ok(still.metadata.deletionTimestamp);
      const adding = await t.request<Status>("PATCH", `${cms(ns)}/fin`, {
        body: { metadata: { finalizers: ["example.com/keep", "example.com/new"] } },
        contentType: "application/merge-patch+json",
      });
      assert.equal(adding.status, 422, "no new finalizers once deleting");
      await t.ok("PATCH", `${cms(ns)}/fin`, {
        body: { metadata: { finalizers: null } },
        contentType: "application/merge-patch+json",
      });
      const gone = await t.request("GET", `${cms(ns)}/fin`);
      assert.equal(gone.status, 404);
    },
  },
  {
    name:
      "generation: spec changes bump it, metadata and status changes do not (built-ins and CRDs)",
    async run(t, ns) {
      const deployments = `/apis/apps/v1/namespaces/${ns}/deployments`;
      const deployment = await t.ok<Obj>("POST", deployments, {
        body: {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "d" },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: "d" } },
            template: {
              metadata: { labels: { app: "d" } },
              spec: { containers: [{ name: "c", image: "busybox" }] },
            },
          },
        },
      });
      assert.equal(deployment.metadata.generation, 1);
      const merge = (path: string, body: unknown) =>
        t.ok<Obj>("PATCH", path, { body, contentType: "application/merge-patch+json" });
      assert.equal(
        (await merge(`${deployments}/d`, { spec: { replicas: 2 } })).metadata.generation,
        2,
      );
      assert.equal(
        (await merge(`${deployments}/d`, { metadata: { labels: { x: "y" } } })).metadata.generation,
        2,
      );
      const pod = await t.ok<Obj>("POST", `/api/v1/namespaces/${ns}/pods`, {
        body: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "p" },
          spec: { containers: [{ name: "c", image: "busybox" }] },
        },
      });
      const podPath = `/api/v1/namespaces/${ns}/pods/p`;
      const podSpecChange = (await merge(podPath, { spec: { activeDeadlineSeconds: 100 } }))
        .metadata.generation;
      if (pod.metadata.generation === undefined) {
        // Servers before Pod generation (KEP-5067: on by default since 1.33) have none at all, and
        // a spec change adds none: `generationChanged()` then drops a Pod's updates, as
        // controller-runtime's GenerationChangedPredicate does.
        assert.equal(podSpecChange, undefined, "no generation appears on a spec change either");
        console.error(`Pod generation on ${t.name}: not tracked`);
      } else {
        assert.equal(pod.metadata.generation, 1, "Pods track generation");
        assert.equal(podSpecChange, 2);
        console.error(`Pod generation on ${t.name}: tracked`);
      }
      const plain = await t.ok<Obj>("POST", cms(ns), { body: configMap("no-generation") });
      assert.equal(plain.metadata.generation, undefined, "ConfigMaps do not");
      const service = await t.ok<Obj>("POST", `/api/v1/namespaces/${ns}/services`, {
        body: {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "s" },
          spec: { ports: [{ port: 80 }] },
        },
      });
      assert.equal(service.metadata.generation, undefined, "Services do not");
      const cluster = await t.ok<Obj>("POST", clusters(ns), {
        body: { apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster", metadata: { name: "g" } },
      });
      assert.equal(cluster.metadata.generation, 1);
      assert.equal(
        (await merge(`${clusters(ns)}/g`, { spec: { paused: true } })).metadata.generation,
        2,
      );
      const status = await merge(`${clusters(ns)}/g/status`, { status: { phase: "Provisioned" } });
      assert.equal(status.metadata.generation, 2);
      const dropped = await merge(`${clusters(ns)}/g`, { status: { phase: "Deleting" } });
      assert.equal(
        (dropped as { status?: { phase?: string } }).status?.phase,
        "Provisioned",
        "the main resource ignores status",
      );
    },
  },
  {
    name:
      "HTTP/2: offered by ALPN; concurrent watches share a client and one cancelled stream leaves the others",
    async run(t, ns) {
      assert.equal(await t.alpn(), "h2");
      const first = await t.ok<Obj>("POST", cms(ns), { body: configMap("h2-0") });
      const from = { resourceVersion: first.metadata.resourceVersion };
      const sawSecond = (events: WireEvent[]) =>
        events.some((e) => e.type === "ADDED" && e.object.metadata?.name === "h2-1");
      const watches = Array.from({ length: 20 }, () => t.watch(cms(ns), from, sawSecond, 20_000));
      // The client gives up on this one (RST_STREAM under HTTP/2) before anything happens.
      const cancelled = await t.watch(cms(ns), from, () => false, 500);
      assert.deepEqual(describeEvents(cancelled.events), []);
      await t.ok<Obj>("POST", cms(ns), { body: configMap("h2-1") });
      for (const { status, events } of await Promise.all(watches)) {
        assert.equal(status, 200);
        assert.deepEqual(describeEvents(events), ["ADDED h2-1"]);
      }
    },
  },
  {
    name: "discovery: short names, the all category and the scale subresource",
    async run(t) {
      type Resources = {
        resources: {
          name: string;
          shortNames?: string[];
          categories?: string[];
          kind: string;
          group?: string;
          version?: string;
          verbs: string[];
        }[];
      };
      const core = await t.ok<Resources>("GET", "/api/v1");
      const apps = await t.ok<Resources>("GET", "/apis/apps/v1");
      const find = (list: Resources, name: string) => list.resources.find((r) => r.name === name)!;
      assert.deepEqual(find(core, "pods").shortNames, ["po"]);
      assert.deepEqual(find(core, "pods").categories, ["all"]);
      assert.deepEqual(find(core, "services").categories, ["all"]);
      assert.equal(find(core, "configmaps").categories, undefined);
      assert.deepEqual(find(apps, "deployments").shortNames, ["deploy"]);
      assert.deepEqual(find(apps, "deployments").categories, ["all"]);
      const scale = find(apps, "deployments/scale");
      assert.deepEqual(
        { group: scale.group, version: scale.version, kind: scale.kind, verbs: scale.verbs },
        { group: "autoscaling", version: "v1", kind: "Scale", verbs: ["get", "patch", "update"] },
      );
      const authz = await t.ok<Resources>("GET", "/apis/authorization.k8s.io/v1");
      assert.deepEqual(find(authz, "selfsubjectaccessreviews").verbs, ["create"]);
    },
  },
  {
    name: "scale subresource: a Scale with the selector as a string; patches and stale puts",
    async run(t, ns) {
      const deployments = `/apis/apps/v1/namespaces/${ns}/deployments`;
      await t.ok("POST", deployments, {
        body: {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "web" },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: "web" } },
            template: {
              metadata: { labels: { app: "web" } },
              spec: { containers: [{ name: "c", image: "busybox" }] },
            },
          },
        },
      });
      type Scale = {
        kind: string;
        apiVersion: string;
        metadata: { name: string; resourceVersion: string };
        spec: { replicas: number };
        status: { selector: string };
      };
      const scale = await t.ok<Scale>("GET", `${deployments}/web/scale`);
      assert.deepEqual(
        [scale.kind, scale.apiVersion, scale.spec.replicas, scale.status.selector],
        ["Scale", "autoscaling/v1", 2, "app=web"],
      );
      const patched = await t.ok<Scale>("PATCH", `${deployments}/web/scale`, {
        body: { spec: { replicas: 3 } },
        contentType: "application/merge-patch+json",
      });
      assert.equal(patched.spec.replicas, 3);
      const stale = await t.request<Status>("PUT", `${deployments}/web/scale`, {
        body: { ...scale, spec: { replicas: 4 } },
      });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.reason, "Conflict");
      const deployment = await t.ok<Obj>("GET", `${deployments}/web`);
      assert.equal((deployment.spec as { replicas: number }).replicas, 3);
      assert.equal(deployment.metadata.generation, 2);
    },
  },
  {
    name: "reviews: can-i, the rules of an administrator, and who am I",
    async run(t) {
      const access = await t.request<{ status: { allowed: boolean } }>(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
          body: {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SelfSubjectAccessReview",
            spec: {
              resourceAttributes: { verb: "create", resource: "pods", namespace: "default" },
            },
          },
        },
      );
      assert.equal(access.status, 201);
      assert.equal(access.body.status.allowed, true);
      const rules = await t.ok<
        {
          status: {
            resourceRules: { verbs: string[]; apiGroups: string[]; resources: string[] }[];
            incomplete: boolean;
          };
        }
      >(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {
          body: {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SelfSubjectRulesReview",
            spec: { namespace: "default" },
          },
        },
      );
      assert.ok(
        rules.status.resourceRules.some((r) =>
          r.verbs.join() === "*" && r.apiGroups.join() === "*" && r.resources.join() === "*"
        ),
        JSON.stringify(rules.status.resourceRules),
      );
      assert.equal(rules.status.incomplete, false);
      const me = await t.ok<{ status: { userInfo: { username: string; groups: string[] } } }>(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
      );
      assert.ok(me.status.userInfo.groups.includes("system:masters"));
      assert.ok(me.status.userInfo.groups.includes("system:authenticated"));
      const list = await t.request("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews");
      assert.equal(list.status, 405, "reviews are created, never listed");
    },
  },
  {
    name:
      "field validation: Strict is a 400 naming each unknown field, Warn a warning, Ignore silence",
    async run(t, ns) {
      const body = (name: string) => ({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, labelz: { a: "b" } },
        data: { x: "1" },
        spec: { foo: 1 },
      });
      const strict = await t.request<Status>("POST", cms(ns), {
        body: body("strict"),
        query: { fieldValidation: "Strict" },
      });
      assert.equal(strict.status, 400);
      assert.equal(
        strict.body.message,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.labelz", unknown field "spec"',
      );
      const warn = await t.request("POST", cms(ns), {
        body: body("warn"),
        query: { fieldValidation: "Warn" },
      });
      assert.equal(warn.status, 201);
      assert.equal(
        warn.headers.get("warning"),
        '299 - "unknown field \\"metadata.labelz\\"", 299 - "unknown field \\"spec\\""',
      );
      const ignore = await t.request("POST", cms(ns), {
        body: body("ignore"),
        query: { fieldValidation: "Ignore" },
      });
      assert.equal(ignore.status, 201);
      assert.equal(ignore.headers.get("warning"), null);
      // A patch is judged on what it would write: 422 on the field "patch".
      for (
        const [contentType, body] of [
          ["application/merge-patch+json", { data: { y: "2" }, spex: true }],
          ["application/strategic-merge-patch+json", { data: { y: "2" }, spex: true }],
          ["application/json-patch+json", [{ op: "add", path: "/spex", value: true }]],
        ] as const
      ) {
        const patch = await t.request<Status>("PATCH", `${cms(ns)}/warn`, {
          body,
          contentType,
          query: { fieldValidation: "Strict" },
        });
        assert.equal(patch.status, 422, contentType);
        assert.equal(patch.body.reason, "Invalid");
        assert.match(
          patch.body.message,
          /^ "" is invalid: patch: Invalid value: .*: strict decoding error: unknown field "spex"$/,
        );
        assert.equal(patch.body.details?.causes?.[0]?.field, "patch");
      }
      const warnPatch = await t.request("PATCH", `${cms(ns)}/warn`, {
        body: { spex: true },
        contentType: "application/merge-patch+json",
      });
      assert.equal(warnPatch.status, 200, "Warn is the default");
      assert.equal(warnPatch.headers.get("warning"), '299 - "unknown field \\"spex\\""');
      // An apply configuration cannot hold a field the schema lacks, whatever the mode.
      const applied = await t.request<Status>("PATCH", `${cms(ns)}/warn`, {
        body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "warn" }, spex: 1 },
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: "conformance", fieldValidation: "Ignore" },
      });
      assert.equal(applied.status, 500);
      assert.equal(
        applied.body.message,
        "failed to create typed patch object (/warn; /v1, Kind=ConfigMap): .spex: field not declared in schema",
      );
    },
  },
  {
    name:
      "OpenAPI: v3's index of hashed documents, a kind's schema and fieldValidation on PATCH; v2 in JSON",
    async run(t) {
      const index = await t.ok<{ paths: Record<string, { serverRelativeURL: string }> }>(
        "GET",
        "/openapi/v3",
      );
      const apps = index.paths["apis/apps/v1"]?.serverRelativeURL ?? "";
      assert.match(apps, /^\/openapi\/v3\/apis\/apps\/v1\?hash=[0-9A-F]{128}$/);
      assert.ok(index.paths["api/v1"]);
      const [path, query] = apps.split("?");
      const document = await t.ok<{
        paths: Record<string, { patch?: { parameters: { name: string; in: string }[] } }>;
        components: { schemas: Record<string, { "x-kubernetes-group-version-kind"?: unknown[] }> };
      }>("GET", path!, { query: { hash: query!.slice("hash=".length) } });
      const deployment = document.components.schemas["io.k8s.api.apps.v1.Deployment"];
      assert.deepEqual(deployment?.["x-kubernetes-group-version-kind"], [
        { group: "apps", kind: "Deployment", version: "v1" },
      ]);
      const patch = document.paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
        ?.patch;
      assert.ok(patch?.parameters.some((p) => p.name === "fieldValidation" && p.in === "query"));
    },
  },
];

/** Events other than bookmarks, as `TYPE name`. */
export function describeEvents(events: WireEvent[]): string[] {
  return events.filter((e) => e.type !== "BOOKMARK").map((e) =>
    `${e.type} ${e.object.metadata?.name}`
  );
}
