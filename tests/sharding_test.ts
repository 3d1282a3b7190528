/**
 * Replicas of a ClusterCache sharing one simulated fleet through the management cluster's Leases:
 * every Cluster is connected by exactly one replica, replicas joining and leaving move clusters
 * without ever connecting one twice, and sources hear a hand-over as a disconnect.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type ClusterEvent, type ShardingOptions } from "../mod.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, key } from "./helpers/fixture.ts";

const CLUSTERS = 12;
const NAMES = Array.from({ length: CLUSTERS }, (_, i) => `workload-${i + 1}`);
const TIMING: Omit<ShardingOptions, "identity" | "leaseNamespace"> = {
  leaseDurationMs: 3_000,
  renewIntervalMs: 500,
  renewDeadlineMs: 2_000,
  buckets: 16,
};

Deno.test({
  name:
    "sharded replicas: each Cluster connected once; a leaving replica's clusters move, never connected twice",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: CLUSTERS });
    const management = new KubeConfig();
    management.loadFromString(fleet.managementKubeconfig());
    const replicas: ClusterCache[] = [];
    const events = new Map<ClusterCache, string[]>();
    const start = async (identity: string) => {
      const cache = await ClusterCache.setup({
        ...FAST,
        management,
        sharding: { identity, leaseNamespace: "default", ...TIMING },
      });
      const log: string[] = [];
      cache.getClusterSource("sharding", (c) => [c.metadata!.name!]).subscribe(
        (request, event: ClusterEvent) => log.push(`${event.reasons.join("+")} ${request}`),
      );
      events.set(cache, log);
      replicas.push(cache);
      return cache;
    };
    const connectedBy = (name: string) =>
      replicas.filter((r) => r.getConnectionState(key(name)).connected);
    let doubles = 0;
    const sampler = setInterval(() => {
      for (const name of NAMES) if (connectedBy(name).length > 1) doubles++;
    }, 25);
    try {
      // The first replica alone serves everything; the next two take their shares from it.
      await start("replica-1");
      await eventually(
        () => NAMES.every((name) => connectedBy(name).length === 1),
        "the first replica to connect every cluster",
        30_000,
      );
      for (const identity of ["replica-2", "replica-3"]) await start(identity);
      const settled = () =>
        eventually(
          () => NAMES.every((name) => connectedBy(name).length === 1),
          "every cluster connected by exactly one replica",
          30_000,
        );
      await settled();
      await eventually(
        () => replicas.every((r) => NAMES.some((name) => connectedBy(name)[0] === r)),
        "every replica to serve some clusters",
        30_000,
      );
      const text = await replicas[0]!.metrics.registry.metrics();
      assert.match(text, /clustercache_owned_clusters \d+/);
      assert.match(
        text,
        /clustercache_cluster_owned\{cluster_name="workload-1",cluster_namespace="default"\} [01]/,
      );

      // One replica leaves (closes cleanly, releasing its Leases): its clusters move.
      const leaving = replicas[0]!;
      assert.ok(
        events.get(leaving)!.some((e) => e.startsWith("disconnect")),
        "the first replica handed clusters to the later ones, and its source heard disconnects",
      );
      const moved = NAMES.filter((name) => connectedBy(name)[0] === leaving);
      replicas.shift();
      await leaving.close();
      await settled();
      for (const name of moved) assert.notEqual(connectedBy(name)[0], leaving);

      // The survivors heard a connect for each cluster they took over; one that was handed over
      // while connected hears a disconnect first.
      const heard = [...events.values()].flat();
      assert.ok(
        moved.every((name) => heard.some((e) => e.startsWith("connect") && e.endsWith(name))),
      );
      assert.equal(doubles, 0, "no cluster was ever connected by two replicas at once");
    } finally {
      clearInterval(sampler);
      for (const r of replicas) await r.close();
    }
  },
});
