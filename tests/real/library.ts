/**
 * The library against real kube-apiservers (`deno task test:real`): connect, cached and live reads
 * and writes, watches, a revoked token (401) and its rotation, a restarted API server, a hung one.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import {
  ClusterCache,
  type ClusterCacheOptions,
  kinds,
  type KubeObject,
  type WatchEvent,
} from "../../mod.ts";
import type { RealFleet } from "../../testing/real/fleet.ts";
import { Controller } from "../../src/main/controller/mod.ts";
import { eventually, FAST } from "../helpers/fixture.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";

const W1 = { namespace: "default", name: "workload-1" };
const W2 = { namespace: "default", name: "workload-2" };

/** A cache on a real fleet's management cluster, with probes and syncs sized for real servers. */
function realCache(
  fleet: RealFleet,
  options: Partial<ClusterCacheOptions> = {},
): Promise<ClusterCache> {
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  return ClusterCache.setup({
    ...FAST,
    management,
    healthProbe: { intervalMs: 300, timeoutMs: 1_000, failureThreshold: 3 },
    initialSyncTimeoutMs: 20_000,
    ...options,
  });
}

Deno.test({
  name: "real: the cache connects, reads, writes, watches, and rides out 401s, restarts and hangs",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(test) {
    await using fleet = await realFleetOrSkip({ clusters: 2, kubeconfigAuth: "token" });
    if (!fleet) return;
    await using cache = await realCache(fleet, {
      watchRequestTimeoutMs: 3_000, // the server ends watches after ~3 s: routine re-watches
    });
    const connected = (key: typeof W1) =>
      eventually(() => cache.getConnectionState(key).connected, `${key.name} to connect`, 30_000);
    await connected(W1);
    await connected(W2);

    await test.step("cached and live reads and writes, and a watch", async () => {
      const namespaces = await cache.getReader(W1).list(kinds.Namespace);
      assert.ok(namespaces.items.some((n) => n.metadata?.name === "kube-system"));
      const events: string[] = [];
      const handle = await cache.watch(W1, {
        name: "configmaps",
        kind: kinds.ConfigMap,
        handler: (event: WatchEvent<KubeObject>) => {
          if (event.object.metadata?.name?.startsWith("real-")) {
            events.push(`${event.type} ${event.object.metadata.name}`);
          }
        },
      });
      await handle.synced;
      const client = cache.getClient(W1);
      await client.create({
        ...kinds.ConfigMap,
        metadata: { namespace: "default", name: "real-a" },
      });
      await client.patch(kinds.ConfigMap, { namespace: "default", name: "real-a" }, {
        type: "merge",
        patch: { data: { x: "1" } },
      });
      await client.delete(kinds.ConfigMap, { namespace: "default", name: "real-a" });
      await eventually(() => events.length === 3, "three watch events");
      assert.deepEqual(events, ["add real-a", "update real-a", "delete real-a"]);
      handle.stop();
    });

    await test.step("a restarted API server: disconnect, reconnect, the cache converges", async () => {
      const server = fleet.cluster("workload-2");
      const reader = () => cache.getReader(W2);
      await reader().list(kinds.ConfigMap, { namespace: "default" }); // the informer runs
      await server.stop();
      await eventually(() => !cache.getConnectionState(W2).connected, "a disconnect", 20_000);
      assert.ok(cache.getConnectionState(W1).connected, "the other cluster is untouched");
      await server.start();
      // Written while the cache was away: the new connection's list must have it.
      await server.request("POST", "/api/v1/namespaces/default/configmaps", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "real-after-restart" },
      });
      await connected(W2);
      await eventually(
        async () => {
          const live = await cache.getUncachedClient(W2).list(kinds.ConfigMap, {
            namespace: "default",
          });
          const cached = await reader().list(kinds.ConfigMap, { namespace: "default" });
          const fingerprint = (items: KubeObject[]) =>
            items.map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort().join();
          return fingerprint(cached.items) === fingerprint(live.items) &&
            cached.items.some((o) => o.metadata?.name === "real-after-restart");
        },
        "the cache to converge",
        20_000,
      );
    });

    await test.step("a hung API server is disconnected; the other cluster keeps serving", async () => {
      const server = fleet.cluster("workload-2");
      server.hang(true);
      try {
        await eventually(() => !cache.getConnectionState(W2).connected, "a disconnect", 20_000);
        const started = performance.now();
        await cache.getReader(W1).list(kinds.Namespace);
        assert.ok(performance.now() - started < 1_000, "reads of a healthy cluster stay fast");
      } finally {
        server.hang(false);
      }
      await connected(W2);
    });

    await test.step("compaction past a watch's resourceVersion: 410 on re-watch, one relist, converged", async () => {
      // PodTemplates are read from etcd in the real fleet (watch cache off), so compaction bites at
      // once; with the cache on, kube-apiserver would answer from memory until its window moves on.
      const kind = { apiVersion: "v1", kind: "PodTemplate" };
      const live = fleet.cluster("workload-1");
      const path = "/api/v1/namespaces/default/podtemplates";
      const template = (name: string) => ({
        apiVersion: "v1",
        kind: "PodTemplate",
        metadata: { name },
        template: { spec: { containers: [{ name: "c", image: "busybox" }] } },
      });
      await live.request("POST", path, template("before"));
      await eventually(
        async () =>
          (await cache.getReader(W1).list(kind, { namespace: "default" })).items.length === 1,
        "the informer to hold the template",
      );
      const relists = async () => {
        const text = await cache.metrics.registry.metrics();
        return Number(
          /clustercache_informer_relists_total\{cluster_name="workload-1"[^}]*kind="v1 PodTemplate"\} (\d+)/
            .exec(text)?.[1] ?? 0,
        );
      };
      const before = await relists();
      // Other writes move etcd on; the templates' watch stays at its last version (no bookmarks
      // from etcd), then compaction passes it.
      for (let i = 0; i < 5; i++) {
        await live.request("POST", "/api/v1/namespaces/default/configmaps", {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: `advance-${i}` },
        });
      }
      await fleet.compact();
      await eventually(async () => await relists() === before + 1, "one relist", 20_000);
      await live.request("POST", path, template("after"));
      await eventually(
        async () => {
          const names = (await cache.getReader(W1).list(kind, { namespace: "default" })).items
            .map((o) => o.metadata?.name).sort().join();
          return names === "after,before";
        },
        "the cache to converge",
        20_000,
      );
      assert.ok(cache.getConnectionState(W1).connected, "a 410 is not a reason to disconnect");
    });

    await test.step("a deleted CRD: reads of it fail, the cluster stays connected; re-created, it converges", async () => {
      const server = fleet.cluster("workload-1");
      const crd = {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          names: { kind: "Widget", listKind: "WidgetList", plural: "widgets", singular: "widget" },
          scope: "Namespaced",
          versions: [{
            name: "v1",
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          }],
        },
      };
      const crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
      const widgets = "/apis/example.com/v1/namespaces/default/widgets";
      const widget = { apiVersion: "example.com/v1", kind: "Widget" };
      const create = async (name: string) => {
        await server.request("POST", crds, crd).catch(() => {});
        await eventually(
          async () => {
            try {
              await server.request("POST", widgets, { ...widget, metadata: { name } });
              return true;
            } catch {
              return false; // the CRD is not served yet
            }
          },
          "the CRD to be served",
          20_000,
        );
      };
      const names = async () =>
        (await cache.getReader(W1).list(widget, { namespace: "default" })).items
          .map((o) => o.metadata?.name).join();
      await create("first");
      await eventually(async () => await names().catch(() => "") === "first", "the first widget");
      await server.request("DELETE", `${crds}/widgets.example.com`);
      await eventually(
        async () => {
          try {
            await server.request("GET", widgets);
            return false;
          } catch {
            return true;
          }
        },
        "the CRD to be gone",
        30_000,
      );
      await new Promise((r) => setTimeout(r, 2_000)); // the informer sees 404s meanwhile
      assert.ok(cache.getConnectionState(W1).connected, "a removed kind does not disconnect");
      await cache.getReader(W1).list(kinds.Namespace); // other kinds keep working
      // Per-kind health says which kind the cache cannot be trusted for, and which it can.
      await eventually(
        () =>
          cache.getInformerStates(W1).some((s) =>
            s.kind === "example.com/v1 Widget" && s.phase === "failing" && s.failingSince! > 0
          ),
        "Widgets failing",
        20_000,
      );
      assert.equal(
        cache.getInformerStates(W1).find((s) => s.kind === "v1 Namespace")?.phase,
        "synced",
      );
      assert.equal(cache.getHealthCheckingState(W1).consecutiveFailures, 0);
      await create("second");
      await eventually(
        async () => await names().catch(() => "") === "second",
        "the cache to hold only what exists now",
        30_000,
      );
      await eventually(
        () =>
          cache.getInformerStates(W1).find((s) => s.kind === "example.com/v1 Widget")?.phase ===
            "synced",
        "Widgets healthy again",
        20_000,
      );
    });

    await test.step("read-your-writes: a reconcile requeued at once always reads its own writes", async () => {
      let created = 0;
      let stale = 0;
      let runs = 0;
      const finished = Promise.withResolvers<void>();
      await using controller = new Controller<typeof W1>({
        name: "real-ryw",
        reconcile: async (request) => {
          runs++;
          const client = cache.getClient(request);
          const seen = await client.list(kinds.ConfigMap, {
            namespace: "default",
            labelSelector: "app=real-ryw",
          });
          if (seen.items.length < created) stale++;
          if (created === 5) return finished.resolve();
          await client.create({
            ...kinds.ConfigMap,
            metadata: { namespace: "default", name: `ryw-${created}`, labels: { app: "real-ryw" } },
          });
          created++;
          return { requeueAfterMs: 1 };
        },
      });
      controller.enqueue(W1);
      controller.start();
      await finished.promise;
      assert.equal(stale, 0);
      assert.equal(runs, 6);
    });

    await test.step("a revoked token is a 401 and a disconnect; a rotated Secret reconnects", async () => {
      await fleet.revokeCredentials("workload-1");
      await eventually(
        () => !cache.getConnectionState(W1).connected,
        "a disconnect on 401",
        20_000,
      );
      await fleet.writeKubeconfigSecret("workload-1"); // a new ServiceAccount and token
      await connected(W1);
      await cache.getReader(W1).list(kinds.Namespace);
    });
  },
});

Deno.test({
  name:
    "real: GOAWAYs on 2% of requests (--goaway-chance) cost nothing: every read and write succeeds",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using fleet = await realFleetOrSkip({ clusters: 1, goAwayChance: 0.02 });
    if (!fleet) return;
    await using cache = await realCache(fleet);
    await eventually(() => cache.getConnectionState(W1).connected, "workload-1 to connect", 30_000);
    const seen = new Set<string>();
    const handle = await cache.watch(W1, {
      name: "goaway",
      kind: kinds.ConfigMap,
      handler: (event: WatchEvent<KubeObject>) => {
        const name = event.object.metadata?.name ?? "";
        if (event.type === "add" && name.startsWith("ga-")) seen.add(name);
      },
    });
    await handle.synced;
    const client = cache.getUncachedClient(W1);
    // 400 live requests over one HTTP/2 connection: about 8 of them end with a GOAWAY, and the
    // requests racing each one must be retried on a new connection, never failed.
    const count = 200;
    const createAndRead = async (i: number) => {
      const name = `ga-${i}`;
      await client.create({ ...kinds.ConfigMap, metadata: { namespace: "default", name } });
      const read = await client.get(kinds.ConfigMap, { namespace: "default", name });
      assert.equal(read.metadata?.name, name);
    };
    for (let batch = 0; batch < count; batch += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => createAndRead(batch + i)));
    }
    await eventually(() => seen.size === count, `the watch to see all ${count} ConfigMaps`, 30_000);
    assert.ok(cache.getConnectionState(W1).connected, "GOAWAYs are not a reason to disconnect");
    handle.stop();
  },
});
