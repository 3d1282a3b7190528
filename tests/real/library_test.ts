/**
 * The library against real kube-apiservers (`deno task test:real`): connect, cached and live reads
 * and writes, watches, a revoked token (401) and its rotation, a restarted API server, a hung one.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, kinds, type KubeObject, type WatchEvent } from "../../mod.ts";
import { eventually, FAST } from "../helpers/fixture.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";

const W1 = { namespace: "default", name: "workload-1" };
const W2 = { namespace: "default", name: "workload-2" };

Deno.test({
  name: "real: the cache connects, reads, writes, watches, and rides out 401s, restarts and hangs",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(test) {
    await using fleet = await realFleetOrSkip({ clusters: 2, kubeconfigAuth: "token" });
    if (!fleet) return;
    const management = new KubeConfig();
    management.loadFromString(fleet.managementKubeconfig());
    await using cache = await ClusterCache.setup({
      ...FAST,
      management,
      healthProbe: { intervalMs: 300, timeoutMs: 1_000, failureThreshold: 3 },
      initialSyncTimeoutMs: 20_000,
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
