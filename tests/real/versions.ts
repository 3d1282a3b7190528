/**
 * A fleet mid-upgrade (`deno task test:real`): workload clusters on the oldest, a middle and the
 * newest supported Kubernetes under one cache. Each says its own version, and the cache reads,
 * watches and writes all three, adapting to what each server supports (WatchList or paged lists)
 * from what the server answers.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, kinds, type KubeObject, type WatchEvent } from "../../mod.ts";
import { eventually, FAST } from "../helpers/fixture.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";
import { KUBERNETES_RELEASES } from "../../testing/real/build.ts";

const releases = ["1.31", "1.34", "1.37"].map((minor) => KUBERNETES_RELEASES[minor]!);

Deno.test({
  name: `real: one cache over workload clusters on Kubernetes ${releases.join(", ")}`,
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using fleet = await realFleetOrSkip({
      clusters: 3,
      kubernetes: releases[2]!,
      workloadKubernetes: { 1: releases[0]!, 2: releases[1]!, 3: releases[2]! },
    });
    if (!fleet) return;
    for (const [i, release] of releases.entries()) {
      const server = fleet.clusters[i]!;
      const version: { gitVersion: string } = await server.request("GET", "/version");
      assert.equal(version.gitVersion, `v${release}`, `workload-${i + 1} is ${release}`);
    }
    const management = new KubeConfig();
    management.loadFromString(fleet.managementKubeconfig());
    await using cache = await ClusterCache.setup({
      ...FAST,
      management,
      healthProbe: { intervalMs: 300, timeoutMs: 1_000, failureThreshold: 3 },
      initialSyncTimeoutMs: 20_000,
    });
    for (const [i, release] of releases.entries()) {
      const cluster = { namespace: "default", name: `workload-${i + 1}` };
      await eventually(() => cache.getConnectionState(cluster).connected, `${release}`, 30_000);
      const namespaces = await cache.getReader(cluster).list(kinds.Namespace);
      assert.ok(namespaces.items.some((n) => n.metadata?.name === "kube-system"), release);
      const seen: string[] = [];
      const handle = await cache.watch(cluster, {
        name: "configmaps",
        kind: kinds.ConfigMap,
        handler: (event: WatchEvent<KubeObject>) => {
          if (event.object.metadata?.name === "mixed") seen.push(event.type);
        },
      });
      await handle.synced;
      const client = cache.getClient(cluster);
      await client.create({
        ...kinds.ConfigMap,
        metadata: { namespace: "default", name: "mixed" },
      });
      await client.patch(kinds.ConfigMap, { namespace: "default", name: "mixed" }, {
        type: "merge",
        patch: { data: { release } },
      });
      await client.delete(kinds.ConfigMap, { namespace: "default", name: "mixed" });
      await eventually(() => seen.length === 3, `three events on ${release}`, 20_000);
      assert.deepEqual(seen, ["add", "update", "delete"], release);
      handle.stop();
      // As the session reports them (within a few seconds).
      await eventually(
        () => {
          const states = cache.getInformerStates(cluster);
          return states.length >= 2 && states.every((s) => s.phase === "synced");
        },
        `both kinds synced on ${release}: ${JSON.stringify(cache.getInformerStates(cluster))}`,
        15_000,
      );
    }
    assert.doesNotMatch(
      await cache.metrics.registry.metrics(),
      /clustercache_informer_relists_total\{[^}]*\} [1-9]/,
      "no informer relisted: each found how to sync on its server at once",
    );
  },
});
