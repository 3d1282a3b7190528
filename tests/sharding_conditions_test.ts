/**
 * Sharding as a real management cluster treats it: an API server slow on every call, a management
 * token rotated by kubelet in its file, and a main thread that stalls past its ownership deadline
 * while its worker still has writes queued. Each with a ClusterCache replica over a simulated fleet.
 */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type ClusterCacheOptions, type ShardingOptions } from "../mod.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, FAST, key } from "./helpers/fixture.ts";
import { STALL_TIMING } from "./helpers/stall_timing.ts";

const NAMES = ["workload-1", "workload-2", "workload-3", "workload-4"];

/** The default sharding timings (20 s, 10 s, 15 s) at half scale. */
const HALF: Omit<ShardingOptions, "identity" | "leaseNamespace"> = {
  leaseDurationMs: 10_000,
  renewIntervalMs: 5_000,
  renewDeadlineMs: 7_500,
};

/** Probes and calls that a management API a second late still answers in time. */
const PATIENT: Partial<ClusterCacheOptions> = {
  client: { userAgent: "clustercache-tests", timeoutMs: 5_000 },
  healthProbe: { intervalMs: 1_000, timeoutMs: 3_000, failureThreshold: 3 },
};

/** Samples every 20 ms whether every cluster is connected; counts the samples where one was not. */
function disconnectSampler(cache: ClusterCache) {
  let gaps = 0;
  const timer = setInterval(() => {
    for (const name of NAMES) if (!cache.getConnectionState(key(name)).connected) gaps++;
  }, 20);
  return {
    get gaps() {
      return gaps;
    },
    [Symbol.dispose]: () => clearInterval(timer),
  };
}

Deno.test({
  name:
    "a management API a fifth of a renew interval late on every call: no cluster is disconnected",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: NAMES.length });
    const management = new KubeConfig();
    management.loadFromString(fleet.managementKubeconfig());
    await using cache = await ClusterCache.setup({
      ...FAST,
      ...PATIENT,
      management,
      sharding: { identity: "only", leaseNamespace: "default", ...HALF },
    });
    const heard: string[] = [];
    cache.getClusterSource("conditions", (c) => [c.metadata!.name!]).subscribe(
      (name, event) => heard.push(`${event.reasons.join("+")} ${name}`),
    );
    await eventually(
      () => NAMES.every((n) => cache.getConnectionState(key(n)).connected),
      "every cluster to connect",
      20_000,
    );
    heard.length = 0;
    // 1 s per call at half scale: 2 s at the default timings.
    fleet.management.setFaults({ latencyMs: HALF.renewIntervalMs! / 5 });
    using sampler = disconnectSampler(cache);
    await new Promise((r) => setTimeout(r, HALF.renewIntervalMs! * 3.5));
    assert.equal(sampler.gaps, 0, "every cluster stayed connected at every sample");
    assert.deepEqual(heard.filter((e) => e.startsWith("disconnect")), []);
    await fleet.management.clearFaults();
  },
});

Deno.test({
  name:
    "a rotated management token file is re-read and handed over in place: no resync of the fleet, no lapse",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: NAMES.length });
    const dir = await Deno.makeTempDir({ prefix: "token-file-" });
    const tokenFile = `${dir}/token`;
    await Deno.writeTextFile(tokenFile, fleet.management.credentials().token);
    // What client-node's loadFromCluster() builds: the token is read from a file kubelet rewrites.
    const management = new KubeConfig();
    management.loadFromOptions({
      clusters: [{
        name: "management",
        server: fleet.management.url,
        caData: btoa(fleet.management.credentials().caPem),
      }],
      users: [{
        name: "sa",
        authProvider: { name: "tokenFile", config: { tokenFile } },
      }],
      contexts: [{ name: "management", cluster: "management", user: "sa" }],
      currentContext: "management",
    });
    const timing = { leaseDurationMs: 4_000, renewIntervalMs: 1_000, renewDeadlineMs: 3_000 };
    try {
      await using cache = await ClusterCache.setup({
        ...FAST,
        ...PATIENT,
        management,
        sharding: { identity: "only", leaseNamespace: "default", ...timing },
      });
      await eventually(
        () => NAMES.every((n) => cache.getConnectionState(key(n)).connected),
        "every cluster to connect",
        20_000,
      );
      using sampler = disconnectSampler(cache);
      const rotated = Date.now();
      // The old token is refused from now on (harsher than kubelet, whose old token stays valid
      // until it expires); the file holds the new one a moment later.
      await fleet.management.rotateCredentials({ notify: false });
      await Deno.writeTextFile(tokenFile, fleet.management.credentials().token);
      await new Promise((r) => setTimeout(r, timing.renewIntervalMs * 5));

      // A resync lists (or streams) Clusters and Secrets from scratch; a reflector that only checks
      // where the server is after a refused watch asks for one item.
      const relists = fleet.management.requestsSince(rotated, { includeWatches: true }).filter((
        r,
      ) =>
        r.method === "GET" && /\/(clusters|secrets)$/.test(r.path) &&
        (r.watch ? r.query.sendInitialEvents === "true" : r.query.limit !== "1")
      );
      assert.deepEqual(relists, [], "the management mirror was not listed again");
      assert.equal(sampler.gaps, 0, "every cluster stayed connected at every sample");
      const leaseWrites = fleet.management.requestsSince(rotated + 2 * timing.renewIntervalMs)
        .filter((r) => r.method === "PUT" && r.path.includes("/leases/"));
      assert.ok(leaseWrites.length > 0, "Leases are renewed with the new token");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a main thread stalled past its ownership deadline: the worker sends none of the writes it still had queued",
  async fn() {
    // The replica runs in a process of its own: the simulator here must answer while it stalls.
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    const dir = await Deno.makeTempDir({ prefix: "stalled-writer-" });
    const kubeconfig = `${dir}/management.kubeconfig`;
    await Deno.writeTextFile(kubeconfig, fleet.managementKubeconfig(), { mode: 0o600 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("./fixtures/stalled_writer.ts", import.meta.url).pathname,
        kubeconfig,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines: Record<string, unknown>[] = [];
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        for (const line of chunk.split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        if (lines.some((l) => l.recovered)) break;
      }
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    }
    const stalled = lines.find((l) => typeof l.stalled === "number")?.stalled as number;
    const outcomes = lines.find((l) => l.outcomes)?.outcomes as string[];
    assert.ok(stalled && outcomes && lines.some((l) => l.recovered), JSON.stringify(lines));

    const deadline = stalled + STALL_TIMING.renewDeadlineMs;
    const posts = fleet.cluster("workload-1").requestsSince(stalled).filter((r) =>
      r.method === "POST" && r.path.endsWith("/configmaps")
    );
    assert.ok(posts.some((r) => r.time < deadline), "writes were flowing when the stall began");
    assert.deepEqual(
      posts.filter((r) =>
        r.time > deadline + 100 && r.time < stalled + STALL_TIMING.renewDeadlineMs + 3_000
      )
        .map((r) => new Date(r.time).toISOString()),
      [],
      "no write reached the cluster between the ownership deadline and the end of the stall",
    );
    assert.ok(
      outcomes.filter((o) => o === "created").length < 20,
      `writes refused once ownership lapsed: ${JSON.stringify(outcomes)}`,
    );
  },
});
