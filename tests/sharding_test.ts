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
import { hash53, ownerOf } from "../src/main/sharding/rendezvous.ts";

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

/**
 * Hands workload-1 from replica-1 to a newcomer while replica-1 waits on a slow API server: for a
 * new connection (`rotation`: its kubeconfig changed) or for a health probe (`probe`). Replica-1
 * must not serve the cluster again, nor count a failure of a connection it let go.
 */
async function handOverWhileWaiting(on: "rotation" | "probe"): Promise<void> {
  await using fleet = await SimulatedFleet.start({ clusters: 1 });
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  const W1 = key("workload-1");
  // A newcomer whose rendezvous share holds workload-1's bucket.
  const bucket = `bucket-${hash53("default/workload-1") % TIMING.buckets!}`;
  const newcomer = Array.from({ length: 20 }, (_, i) => `replica-${i + 2}`).find((identity) =>
    ownerOf(bucket, [{ identity: "replica-1" }, { identity }]) === identity
  )!;
  // Calls and probes wait for the slow server rather than fail.
  const options = {
    ...FAST,
    management,
    client: { ...FAST.client, timeoutMs: 40_000 },
    healthProbe: { intervalMs: 200, timeoutMs: 40_000, failureThreshold: 3 },
  };
  const first = await ClusterCache.setup({
    ...options,
    sharding: { identity: "replica-1", leaseNamespace: "default", ...TIMING },
  });
  let second: ClusterCache | undefined;
  let samples = 0;
  const wrong: string[] = [];
  let letGo = false;
  const sampler = setInterval(() => {
    samples++;
    const one = first.getConnectionState(W1).connected;
    const two = second?.getConnectionState(W1).connected ?? false;
    if (one && two) wrong.push(`sample ${samples}: connected by both replicas`);
    if (letGo && one) wrong.push(`sample ${samples}: connected again by the replica that let go`);
    letGo ||= second !== undefined && !one;
  }, 10);
  try {
    await eventually(() => first.getConnectionState(W1).connected, "replica-1 to connect");
    const server = fleet.cluster("workload-1");
    // Long enough for the newcomer to start and replica-1 to let go first on a slow machine.
    const LATENCY_MS = 12_000;
    const since = Date.now();
    server.setFaults({ latencyMs: LATENCY_MS });
    if (on === "rotation") {
      const opened = server.connections.length;
      await server.rotateCredentials(); // a new client certificate: replica-1 connects anew
      await eventually(
        () => server.connections.length > opened,
        "replica-1's new connection to be under way",
      );
    } else {
      await eventually(
        () => server.requestsSince(since).some((r) => r.path === "/"),
        "a probe to be out",
      );
    }
    const waiting = Date.now();
    second = await ClusterCache.setup({
      ...options,
      sharding: { identity: newcomer, leaseNamespace: "default", ...TIMING },
    });
    await eventually(() => letGo, "replica-1 to let the cluster go", 15_000);
    assert.ok(Date.now() < waiting + LATENCY_MS, "let go before its answer came");
    server.setFaults({ latencyMs: 0 }); // requests already waiting still wait their 12 s
    await eventually(
      () => second!.getConnectionState(W1).connected,
      "the newcomer to connect",
      30_000,
    );
    // Past the moment replica-1's answer came.
    await new Promise((r) => setTimeout(r, Math.max(0, waiting + LATENCY_MS + 2_000 - Date.now())));
    assert.deepEqual(wrong.slice(0, 5), []);
    // A connection made after the hand-over may serve for a moment too short to sample: its
    // history says whether one was.
    const history = first.describeCluster(W1)!.history.map((h) => `${h.kind}: ${h.message}`);
    const handedOver = history.indexOf("disconnected: another replica serves it now");
    assert.ok(handedOver >= 0, history.join("; "));
    assert.deepEqual(history.slice(handedOver + 1), [], "nothing happened after the hand-over");
    assert.equal(first.getConnectionState(W1).connected, false);
    assert.equal(first.getHealthCheckingState(W1).consecutiveFailures, 0, "no failure counted");
  } finally {
    clearInterval(sampler);
    await first.close();
    await second?.close();
  }
}

Deno.test(
  "a cluster handed to another replica while its rotated kubeconfig connects anew is not served again",
  () => handOverWhileWaiting("rotation"),
);

Deno.test(
  "a cluster handed to another replica while a probe is out counts no failure of the connection let go",
  () => handOverWhileWaiting("probe"),
);
