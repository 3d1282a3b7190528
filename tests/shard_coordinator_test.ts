/**
 * The shard coordinator against the simulated management cluster's Leases (real optimistic
 * concurrency over HTTP): exactly one owner per cluster at every sample, take-over after a crash
 * within a lease duration, a joining replica takes about its share, a partitioned replica lets go
 * before anyone takes over, and racing writers are settled by resourceVersion.
 */
import assert from "node:assert/strict";
import {
  type LeaseApi,
  resolveSharding,
  ShardCoordinator,
  type ShardingOptions,
} from "../src/main/sharding/shard_coordinator.ts";
import { ownerOf } from "../src/main/sharding/rendezvous.ts";
import { isConflict } from "../src/shared/errors.ts";
import { SimulatedFleet } from "../testing/sim/fleet.ts";
import { HttpLeaseApi } from "./helpers/lease_api.ts";
import { eventually } from "./helpers/fixture.ts";

const KEYS = Array.from({ length: 30 }, (_, i) => `default/workload-${i + 1}`);
const TIMING: Omit<ShardingOptions, "identity" | "leaseNamespace"> = {
  leaseDurationMs: 2_000,
  renewIntervalMs: 300,
  renewDeadlineMs: 1_400,
  buckets: 32,
};

interface Replica {
  coordinator: ShardCoordinator;
  api: HttpLeaseApi;
}

async function rig(count: number) {
  const fleet = await SimulatedFleet.start({ clusters: 0 });
  const replicas: Replica[] = [];
  const running = new Set<Replica>();
  const add = (identity: string) => {
    const api = new HttpLeaseApi(fleet.management);
    const coordinator = new ShardCoordinator(
      { identity, leaseNamespace: "default", ...TIMING },
      api,
    );
    coordinator.start();
    const replica = { coordinator, api };
    replicas.push(replica);
    running.add(replica);
    return replica;
  };
  for (let i = 1; i <= count; i++) add(`replica-${i}`);
  /** Owners of each key now; a key with two is a failure of the whole design. */
  const owners = (key: string) => replicas.filter((r) => r.coordinator.owns(key));
  let doubles = 0;
  const sampler = setInterval(() => {
    for (const key of KEYS) if (owners(key).length > 1) doubles++;
  }, 20);
  /** Every replica sees every live one, and each cluster is served by the one rendezvous picks. */
  const settled = () =>
    eventually(
      () => {
        const live = replicas.filter((x) => running.has(x));
        if (!live.every((x) => x.coordinator.members.length === live.length)) return false;
        return KEYS.every((k) => {
          const serving = owners(k);
          const bucket = `bucket-${serving[0]?.coordinator.bucketOf(k)}`;
          return serving.length === 1 &&
            serving[0]!.coordinator.identity === ownerOf(bucket, live[0]!.coordinator.members);
        });
      },
      "every cluster served once, by its rendezvous owner",
      15_000,
    );
  return {
    fleet,
    replicas,
    add,
    owners,
    settled,
    crash: async (replica: Replica) => {
      running.delete(replica);
      await replica.coordinator.stop({ release: false }); // kill -9: nothing released
    },
    doubles: () => doubles,
    async [Symbol.asyncDispose]() {
      clearInterval(sampler);
      for (const r of replicas) {
        await r.coordinator.stop({ release: false });
        r.api[Symbol.dispose]();
      }
      await fleet.close();
    },
  };
}

function assignment(replicas: Replica[]): Map<string, string> {
  return new Map(
    KEYS.map((k) => [k, replicas.find((r) => r.coordinator.owns(k))?.coordinator.identity ?? ""]),
  );
}

Deno.test("3 replicas, 30 clusters: each owned exactly once; a crashed replica's are taken over, never twice", async () => {
  await using r = await rig(3);
  await r.settled();
  const byOwner = Map.groupBy(KEYS, (k) => r.owners(k)[0]!.coordinator.identity);
  assert.equal(byOwner.size, 3, "every replica serves some");
  const [victim, ...survivors] = r.replicas;
  const victimKeys = byOwner.get(victim!.coordinator.identity)!;
  await r.crash(victim!);
  await eventually(
    () => victimKeys.every((k) => survivors.some((s) => s.coordinator.owns(k))),
    "the crashed replica's clusters to be served again",
    15_000,
  );
  // How fast is the bench's business (shard_handover_s); here: that it happens, and safely.
  assert.equal(r.doubles(), 0, "no cluster was ever served by two replicas");
});

Deno.test("a fourth replica takes about a quarter of the clusters, and only from the others", async () => {
  await using r = await rig(3);
  await r.settled();
  const before = assignment(r.replicas);
  const fourth = r.add("replica-4");
  await r.settled();
  const after = assignment(r.replicas);
  const moved = KEYS.filter((k) => before.get(k) !== after.get(k));
  assert.ok(
    moved.every((k) => after.get(k) === fourth.coordinator.identity),
    "moves go to the newcomer",
  );
  assert.ok(
    moved.length >= 3 && moved.length <= 14,
    `${moved.length} of 30 moved (a quarter is 7.5)`,
  );
  assert.equal(r.doubles(), 0);
});

Deno.test("a partitioned replica stops serving before its Leases expire; the others take over", async () => {
  await using r = await rig(3);
  await r.settled();
  const [cut] = r.replicas;
  const cutKeys = KEYS.filter((k) => cut!.coordinator.owns(k));
  assert.ok(cutKeys.length > 0);
  cut!.api.partitioned = true;
  const since = performance.now();
  await eventually(
    () => cutKeys.every((k) => !cut!.coordinator.owns(k)),
    "the cut replica to let go",
  );
  const letGo = performance.now() - since;
  assert.ok(letGo < 2_000, `let go after ${Math.round(letGo)} ms, under the lease duration`);
  await eventually(
    () => cutKeys.every((k) => r.replicas.slice(1).some((x) => x.coordinator.owns(k))),
    "the others to take the cut replica's clusters",
    15_000,
  );
  assert.equal(r.doubles(), 0, "never served twice, even across the partition");
  cut!.api.partitioned = false;
  await r.settled();
  assert.equal(r.doubles(), 0);
});

Deno.test("racing writers on one Lease are settled by resourceVersion, never by last writer wins", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using a = new HttpLeaseApi(fleet.management);
  using b = new HttpLeaseApi(fleet.management);
  const lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      namespace: "default",
      name: "race",
      labels: { "clustercache.fleetkit.dev/lease": "shard" },
    },
    spec: { holderIdentity: "a" },
  };
  const signal = AbortSignal.timeout(10_000);
  const created = await Promise.allSettled([
    a.create(lease, signal),
    b.create({ ...lease, spec: { holderIdentity: "b" } }, signal),
  ]);
  assert.deepEqual(created.map((c) => c.status).sort(), ["fulfilled", "rejected"]);
  const [current] = await a.list("default", "clustercache.fleetkit.dev/lease", signal);
  const updates = await Promise.allSettled([
    a.update({ ...current!, spec: { holderIdentity: "a" } }, signal),
    b.update({ ...current!, spec: { holderIdentity: "b" } }, signal),
  ]);
  assert.deepEqual(updates.map((u) => u.status).sort(), ["fulfilled", "rejected"]);
  const winner = updates.findIndex((u) => u.status === "fulfilled") === 0 ? "a" : "b";
  const [final] = await a.list("default", "clustercache.fleetkit.dev/lease", signal);
  assert.equal(final!.spec!.holderIdentity, winner, "the loser's write changed nothing");
});

Deno.test("two processes started with one identity never serve the same cluster", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using apiA = new HttpLeaseApi(fleet.management);
  using apiB = new HttpLeaseApi(fleet.management);
  const options = { identity: "same", leaseNamespace: "default", ...TIMING };
  const a = new ShardCoordinator(options, apiA);
  const b = new ShardCoordinator(options, apiB);
  let doubles = 0;
  const sampler = setInterval(() => {
    for (const k of KEYS) if (a.owns(k) && b.owns(k)) doubles++;
  }, 20);
  try {
    a.start();
    b.start();
    await eventually(
      () => KEYS.every((k) => a.owns(k) || b.owns(k)),
      "every cluster served by one of them",
    );
    await new Promise((r) => setTimeout(r, 3 * TIMING.renewIntervalMs!));
    assert.equal(doubles, 0, "each fencing Lease names one incarnation, so only one renews it");
  } finally {
    clearInterval(sampler);
    await a.stop();
    await b.stop();
  }
});

// ------------------------------------------------------------ real management clusters

/** The default timings (20 s lease, 10 s renew, 15 s deadline) at a scale, for tests that wait. */
function scaled(factor: number): Omit<ShardingOptions, "identity" | "leaseNamespace"> {
  return {
    leaseDurationMs: 20_000 * factor,
    renewIntervalMs: 10_000 * factor,
    renewDeadlineMs: 15_000 * factor,
  };
}

/** Counts, every 20 ms, how often `coordinator` stopped serving a key it served the sample before. */
function lapseCounter(coordinator: ShardCoordinator) {
  let served = new Set<string>();
  let lapses = 0;
  const timer = setInterval(() => {
    const now = new Set(KEYS.filter((k) => coordinator.owns(k)));
    for (const k of served) if (!now.has(k)) lapses++;
    served = now;
  }, 20);
  return {
    get lapses() {
      return lapses;
    },
    [Symbol.dispose]: () => clearInterval(timer),
  };
}

Deno.test("a management API answering every call late (a fifth of the renew interval) never lapses the only replica", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using api = new HttpLeaseApi(fleet.management);
  const timing = scaled(0.5); // renew every 5 s, deadline 7.5 s: each call 1 s late is 2 s at default
  const coordinator = new ShardCoordinator(
    { identity: "only", leaseNamespace: "default", ...timing },
    api,
  );
  coordinator.start();
  try {
    await eventually(() => KEYS.every((k) => coordinator.owns(k)), "the replica to serve all");
    fleet.management.setFaults({ latencyMs: timing.renewIntervalMs! / 5 });
    using counter = lapseCounter(coordinator);
    // Three renew intervals and more: a round of list, membership and bucket writes takes three
    // latencies, so rounds scheduled after the previous one ended renewed 16 s apart at default
    // timings, past the 15 s deadline.
    await new Promise((r) => setTimeout(r, timing.renewIntervalMs! * 3.5));
    assert.equal(counter.lapses, 0, "no cluster stopped being served");
    assert.ok(KEYS.every((k) => coordinator.owns(k)));
  } finally {
    await coordinator.stop();
  }
});

Deno.test("a Lease renewal that hangs is given up in time and retried: the replica never lapses", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using api = new HttpLeaseApi(fleet.management);
  const timing = scaled(0.25); // renew every 2.5 s, deadline 3.75 s
  const coordinator = new ShardCoordinator(
    { identity: "only", leaseNamespace: "default", buckets: 4, ...timing },
    api,
  );
  coordinator.start();
  try {
    await eventually(() => KEYS.every((k) => coordinator.owns(k)), "the replica to serve all");
    using counter = lapseCounter(coordinator);
    // The next renewal of one fencing Lease is never answered (and later one of each).
    fleet.management.hangRequests({ method: "PUT", path: /\/leases\/clustercache-shard-/ }, 1);
    await new Promise((r) => setTimeout(r, timing.renewIntervalMs! * 2.5));
    fleet.management.hangRequests({ method: "PUT", path: /\/leases\/clustercache-shard-/ }, 4);
    await new Promise((r) => setTimeout(r, timing.renewIntervalMs! * 2.5));
    assert.equal(counter.lapses, 0, "no cluster stopped being served");
  } finally {
    await coordinator.stop();
  }
});

Deno.test("a round's changes reach listeners in one notification, not one per bucket", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using api = new HttpLeaseApi(fleet.management);
  const coordinator = new ShardCoordinator(
    { identity: "only", leaseNamespace: "default", ...TIMING, buckets: 64 },
    api,
  );
  // On a starved machine some takeovers miss their round's bounds and land in the next: count
  // what each round tells, not how many rounds it took.
  let changes = 0;
  let thisRound = 0;
  let worstRound = 0;
  const round = coordinator.round.bind(coordinator);
  coordinator.round = () => {
    thisRound = 0;
    return round();
  };
  coordinator.onChange((changed) => {
    if (!changed) return;
    changes++;
    worstRound = Math.max(worstRound, ++thisRound);
  });
  coordinator.start();
  try {
    await eventually(() => KEYS.every((k) => coordinator.owns(k)), "the replica to serve all");
    assert.ok(changes >= 1, "taking buckets is told");
    assert.equal(worstRound, 1, "the buckets a round takes are told once, not one by one");
  } finally {
    await coordinator.stop();
  }
});

Deno.test("two deployments with their own Lease prefixes in one namespace each serve their whole fleet", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  const apis = [0, 1, 2, 3].map(() => new HttpLeaseApi(fleet.management));
  const start = (identity: string, leasePrefix: string, api: HttpLeaseApi) => {
    const c = new ShardCoordinator(
      { identity, leaseNamespace: "default", leasePrefix, ...TIMING },
      api,
    );
    c.start();
    return c;
  };
  // Two replicas of operator A, two of operator B (same namespace, same identities even).
  const a = [
    start("replica-1", "operator-a", apis[0]!),
    start("replica-2", "operator-a", apis[1]!),
  ];
  const b = [
    start("replica-1", "operator-b", apis[2]!),
    start("replica-2", "operator-b", apis[3]!),
  ];
  try {
    for (const [name, deployment] of [["A", a], ["B", b]] as const) {
      await eventually(
        () =>
          deployment.every((c) => c.members.length === 2) &&
          KEYS.every((k) => deployment.filter((c) => c.owns(k)).length === 1),
        `deployment ${name} to serve each of its clusters once`,
      );
    }
    assert.deepEqual(a[0]!.members.map((m) => m.identity).sort(), ["replica-1", "replica-2"]);
  } finally {
    for (const c of [...a, ...b]) await c.stop();
    for (const api of apis) api[Symbol.dispose]();
  }
});

Deno.test("a leasePrefix that cannot be a label value is refused", () => {
  for (const leasePrefix of ["Operator", "a_b", "-x", "x".repeat(41), ""]) {
    assert.throws(
      () => resolveSharding({ identity: "r", leaseNamespace: "default", leasePrefix }),
      TypeError,
      leasePrefix,
    );
  }
});

/** Timings where a lease duration (6 s) is far longer than a renew interval (1 s). */
const ROLLOUT_TIMING = {
  leaseDurationMs: 6_000,
  renewIntervalMs: 1_000,
  renewDeadlineMs: 4_000,
  buckets: 16,
};

Deno.test("a graceful leave hands its clusters over within about one renew interval", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using apiA = new HttpLeaseApi(fleet.management);
  using apiB = new HttpLeaseApi(fleet.management);
  const options = { leaseNamespace: "default", ...ROLLOUT_TIMING };
  const a = new ShardCoordinator({ identity: "replica-a", ...options }, apiA);
  const b = new ShardCoordinator({ identity: "replica-b", ...options }, apiB);
  a.start();
  b.start();
  try {
    await eventually(
      () =>
        a.members.length === 2 && b.members.length === 2 &&
        KEYS.every((k) => a.owns(k) !== b.owns(k)),
      "two replicas sharing the fleet",
    );
    // Counted in b's rounds, not milliseconds: a starved machine stretches a round, not their number.
    let rounds = 0;
    const unsubscribe = b.onChange(() => rounds++);
    const stopped = performance.now();
    await a.stop(); // SIGTERM: releases its fences and its membership
    await eventually(() => KEYS.every((k) => b.owns(k)), "the other replica to serve all");
    unsubscribe();
    const handover = performance.now() - stopped;
    // One round may have been under way when the release landed; the next one takes over. Without
    // the release it takes a lease duration (six rounds).
    const how = `handed over after ${rounds} rounds of the other replica, ${
      Math.round(handover)
    } ms (renew interval ${ROLLOUT_TIMING.renewIntervalMs} ms)`;
    assert.ok(rounds >= 1 && rounds <= 2, how);
    assert.ok(handover < ROLLOUT_TIMING.leaseDurationMs, how); // not by waiting the Lease out
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("rollouts of a one-replica Deployment: each new Pod serves everything once the old one stops, and no membership Lease piles up", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  const leases = fleet.management.typeOf("coordination.k8s.io", "leases")!;
  const apis: HttpLeaseApi[] = [];
  const pod = (identity: string) => {
    const api = new HttpLeaseApi(fleet.management);
    apis.push(api);
    const c = new ShardCoordinator({ identity, leaseNamespace: "default", ...ROLLOUT_TIMING }, api);
    c.start();
    return c;
  };
  let current = pod("operator-7d9c-0");
  const started: ShardCoordinator[] = [current];
  try {
    await eventually(() => KEYS.every((k) => current.owns(k)), "the first Pod to serve all");
    for (const name of ["operator-5f2a-0", "operator-81bb-0", "operator-c3d4-0"]) {
      const next = pod(name); // maxSurge: the new Pod starts while the old one runs
      started.push(next);
      await eventually(() => next.members.length === 2, `${name} to see the old Pod`);
      const stopped = performance.now();
      await current.stop(); // the old Pod gets SIGTERM
      await eventually(() => KEYS.every((k) => next.owns(k)), `${name} to serve all`);
      const took = performance.now() - stopped;
      assert.ok(
        took <= ROLLOUT_TIMING.renewIntervalMs + 1_000,
        `${name} served everything ${Math.round(took)} ms after the old Pod stopped`,
      );
      current = next;
    }
    const members = fleet.management.store.list(leases, "default")
      .filter((l) => l.metadata?.labels?.["clustercache.fleetkit.dev/lease"] === "member")
      .map((l) => l.metadata!.name);
    assert.deepEqual(members, ["clustercache-member-operator-c3d4-0"], "old Pods' Leases are gone");
  } finally {
    for (const c of started) await c.stop();
    for (const api of apis) api[Symbol.dispose]();
  }
});

Deno.test("a membership Lease renewed long ago is not waited out, and one expired for long is collected", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  const leases = fleet.management.typeOf("coordination.k8s.io", "leases")!;
  const ghost = (name: string, agoMs: number) => {
    const at = new Date(Date.now() - agoMs).toISOString().replace("Z", "000Z");
    fleet.management.store.create(leases, {
      metadata: {
        namespace: "default",
        name: `clustercache-member-${name}`,
        labels: {
          "clustercache.fleetkit.dev/lease": "member",
          "clustercache.fleetkit.dev/lease-prefix": "clustercache",
        },
      },
      spec: { holderIdentity: name, leaseDurationSeconds: 6, renewTime: at, acquireTime: at },
    });
  };
  // A Pod killed 30 s ago (kill -9: nothing released) and one killed an hour ago.
  ghost("killed-lately", 30_000);
  ghost("killed-long-ago", 3_600_000);
  using api = new HttpLeaseApi(fleet.management);
  const fresh = new ShardCoordinator(
    { identity: "fresh", leaseNamespace: "default", ...ROLLOUT_TIMING },
    api,
  );
  const started = performance.now();
  fresh.start();
  try {
    await eventually(() => KEYS.every((k) => fresh.owns(k)), "the new replica to serve all");
    const took = performance.now() - started;
    assert.ok(
      took < ROLLOUT_TIMING.leaseDurationMs / 2,
      `served everything after ${Math.round(took)} ms, not a lease duration later`,
    );
    assert.deepEqual(fresh.members.map((m) => m.identity), ["fresh"]);
    await eventually(
      () => !fleet.management.store.get(leases, "default", "clustercache-member-killed-long-ago"),
      "the Lease expired an hour ago to be collected",
    );
    assert.ok(
      fleet.management.store.get(leases, "default", "clustercache-member-killed-lately"),
      "a Lease expired 30 s ago is kept (collected after 10 lease durations: 60 s)",
    );
  } finally {
    await fresh.stop();
  }
});

Deno.test("a fence another replica wrote is let go at once, not when the rest of the round ends", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  using http = new HttpLeaseApi(fleet.management);
  // Once `hold` is set, lists hang until the coordinator gives up on them; the test counts those
  // that ended, and notes how many had when a renewal met the other replica's write.
  let hold = false;
  let listsEnded = 0;
  let endedAtConflict: number | undefined;
  const api: LeaseApi = {
    list: async (namespace, selector, signal) => {
      if (!hold) return await http.list(namespace, selector, signal);
      try {
        return await new Promise<never>((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason), { once: true })
        );
      } finally {
        listsEnded++;
      }
    },
    get: (namespace, name, signal) => http.get(namespace, name, signal),
    create: (lease, signal) => http.create(lease, signal),
    update: async (lease, signal) => {
      try {
        return await http.update(lease, signal);
      } catch (error) {
        if (hold && isConflict(error)) endedAtConflict ??= listsEnded;
        throw error;
      }
    },
    delete: (lease, signal) => http.delete(lease, signal),
  };
  const coordinator = new ShardCoordinator(
    { identity: "only", leaseNamespace: "default", buckets: 4, ...scaled(0.25) },
    api,
  );
  const key = KEYS[0]!;
  let endedWhenTold: number | undefined;
  coordinator.onChange(() => {
    if (hold && !coordinator.owns(key)) endedWhenTold ??= listsEnded;
  });
  coordinator.start();
  try {
    await eventually(() => KEYS.every((k) => coordinator.owns(k)), "the replica to serve all");
    hold = true;
    // Another replica took the key's fence (as one would after seeing it unrenewed for a lease
    // duration): the next renewal conflicts.
    const leases = fleet.management.typeOf("coordination.k8s.io", "leases")!;
    const name = `clustercache-shard-${coordinator.bucketOf(key)}`;
    const fence = fleet.management.store.get(leases, "default", name)!;
    fleet.management.store.update(leases, {
      ...fence,
      spec: { ...fence.spec as Record<string, unknown>, holderIdentity: "other_1" },
    });
    await eventually(() => endedWhenTold !== undefined, "the loss to be told", 15_000);
    assert.notEqual(endedAtConflict, undefined, "a renewal met the other replica's write");
    // The round goes on to list the Leases, which hangs: the loss is told before that list ends.
    assert.equal(endedWhenTold, endedAtConflict, "told before the round's list ended");
  } finally {
    await coordinator.stop({ release: false });
  }
});
