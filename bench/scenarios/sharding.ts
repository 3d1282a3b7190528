/**
 * Sharding: three replicas' shard coordinators over the simulator's Leases with 1,000 clusters —
 * Lease writes per second, samples where a cluster had two owners, and the time from a replica's
 * crash (nothing released) to all its clusters being owned by the survivors. Ownership is what the
 * coordinator decides; connecting then takes a reconcile (the health probe interval at most).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { ShardCoordinator, type ShardingOptions } from "../../src/main/shard_coordinator.ts";
import { HttpLeaseApi } from "../../tests/helpers/lease_api.ts";
import type { HttpServerLike } from "../../tests/helpers/sim_http.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../lib/sim_process.ts";
import { waitFor } from "../lib/stats.ts";

const PROBE_INTERVAL_S = 10; // the ClusterCache default

function serverOf(config: KubeConfig): HttpServerLike {
  const cluster = config.getCurrentCluster()!;
  const user = config.getCurrentUser()!;
  const pem = (data?: string) => (data ? atob(data) : "");
  return {
    url: cluster.server,
    credentials: () => ({
      caPem: pem(cluster.caData),
      clientCertificatePem: pem(user.certData),
      clientKeyPem: pem(user.keyData),
      token: user.token ?? "",
    }),
  };
}

export async function sharding(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  // Full runs use the defaults (20 s Leases renewed every 10 s); quick ones a fifth of them.
  const scale = quick ? 0.2 : 1;
  const timing: Omit<ShardingOptions, "identity" | "leaseNamespace"> = {
    leaseDurationMs: 20_000 * scale,
    renewIntervalMs: 10_000 * scale,
    renewDeadlineMs: 15_000 * scale,
  };
  await using sim = await startSim(0);
  const server = serverOf(sim.management);
  const keys = Array.from({ length: 1000 }, (_, i) => `default/workload-${i + 1}`);
  const replicas = ["replica-1", "replica-2", "replica-3"].map((identity) => {
    const api = new HttpLeaseApi(server);
    return {
      api,
      coordinator: new ShardCoordinator({ identity, leaseNamespace: "default", ...timing }, api),
    };
  });
  let doubles = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    samples++;
    for (const k of keys) {
      let owners = 0;
      for (const r of replicas) if (r.coordinator.owns(k)) owners++;
      if (owners > 1) doubles++;
    }
  }, 50);
  try {
    for (const r of replicas) r.coordinator.start();
    await waitFor(
      () =>
        keys.every((k) => replicas.filter((r) => r.coordinator.owns(k)).length === 1) &&
        replicas.every((r) => r.coordinator.members.length === 3),
      "every cluster owned once",
      120_000,
    );
    log("sharding: settled; counting Lease writes");
    const writes = () => replicas.reduce((sum, r) => sum + r.coordinator.leaseWrites, 0);
    const before = writes();
    const window = 6 * timing.renewIntervalMs!;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, window));
    const perSecond = (writes() - before) / ((performance.now() - t0) / 1000) / scale;

    const [victim, ...survivors] = replicas;
    const orphaned = keys.filter((k) => victim!.coordinator.owns(k));
    await victim!.coordinator.stop({ release: false });
    const crashed = performance.now();
    await waitFor(
      () => orphaned.every((k) => survivors.some((s) => s.coordinator.owns(k))),
      "the crashed replica's clusters to be owned again",
      120_000,
    );
    const handover = (performance.now() - crashed) / 1000 / scale;
    const lease = 20;
    return [
      figure("shard_handover_s", handover, "s", {
        goal: `<= ${lease + PROBE_INTERVAL_S} (lease duration + probe interval)`,
        note:
          `${orphaned.length} clusters of a crashed replica (nothing released) owned again by the survivors${
            quick ? "; measured at a fifth of the default timings, scaled back" : ""
          }`,
      }),
      figure("shard_double_owned_samples", doubles, "samples", {
        goal: "0",
        note:
          `${samples} samples of 1,000 clusters x 3 replicas, every 50 ms, through start, renewals and a crash`,
      }),
      figure("shard_lease_writes_per_s_at_1000", perSecond, "writes/s", {
        goal: "< 100 (multicluster-runtime's estimate per 1,000 clusters)",
        note:
          `3 replicas, 64 buckets (one fencing Lease each) and a membership Lease per replica, renewed every ${
            10 * scale
          } s${quick ? ", scaled to the default 10 s" : ""}; independent of the number of clusters`,
      }),
    ];
  } finally {
    clearInterval(sampler);
    for (const r of replicas) {
      await r.coordinator.stop();
      r.api[Symbol.dispose]();
    }
  }
}
