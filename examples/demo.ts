/**
 * `deno task demo [--clusters N] [--duration S]`: a simulated fleet, a ClusterCache over it, and a
 * live view of what the cache knows about every cluster, while a scripted story breaks clusters one
 * at a time: a hung API server, rotated credentials, an event flood, a deleted cluster, a new one, a
 * refused connection. The other clusters stay green, and reads on them stay fast.
 *
 * On a terminal the view redraws in place; otherwise it prints plain progress lines. It ends by
 * itself (90 s by default) or on Ctrl-C, and leaves nothing running.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { ClusterCache, type ObjectKey } from "../mod.ts";
import { Controller } from "../src/main/controller/mod.ts";
import { statusHandler } from "../src/main/status/mod.ts";
import { SimulatedFleet } from "../testing/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clusters: { type: "string" },
    duration: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task demo [--clusters N] [--duration SECONDS]\n\nDefaults: 20 clusters, 90 seconds.",
  );
  Deno.exit(0);
}
const clusterCount = Math.max(6, Number(values.clusters ?? 20));
const durationS = Math.max(20, Number(values.duration ?? 90));
if (!Number.isFinite(clusterCount) || !Number.isFinite(durationS)) {
  console.error("--clusters and --duration take numbers");
  Deno.exit(2);
}
const tty = Deno.stdout.isTerminal();
const POD = { apiVersion: "v1", kind: "Pod" };
const CM = { apiVersion: "v1", kind: "ConfigMap" };
const key = (name: string): ObjectKey => ({ namespace: "default", name });
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;

// ------------------------------------------------------------------ the fleet and the cache

const fleet = await SimulatedFleet.start({
  clusters: clusterCount,
  server: { bookmarkIntervalMs: 5_000 },
});
for (const cluster of fleet.clusters) {
  await cluster.flood({ count: 25, kind: "pods", namespace: "apps" });
  await cluster.flood({ count: 10, namespace: "apps" });
}
const management = new KubeConfig();
management.loadFromString(fleet.managementKubeconfig());
const cache = await ClusterCache.setup({
  management,
  client: { userAgent: "clustercache-demo" },
  healthProbe: { intervalMs: 1_000, timeoutMs: 1_000, failureThreshold: 3 },
  connectionCreationRetryIntervalMs: 2_000,
  initialSyncTimeoutMs: 20_000,
});

interface ClusterView {
  pods: Set<string>;
  configMaps: Set<string>;
  events: number;
  eventsPerSecond: number;
  deleted: boolean;
  stale: boolean;
}
const views = new Map<string, ClusterView>();
const view = (name: string): ClusterView => {
  let v = views.get(name);
  if (!v) {
    views.set(
      name,
      v = {
        pods: new Set(),
        configMaps: new Set(),
        events: 0,
        eventsPerSecond: 0,
        deleted: false,
        stale: false,
      },
    );
  }
  return v;
};

// A tiny controller: on every connect, watch Pods and ConfigMaps again (watches end with a connection).
const controller = new Controller<ObjectKey>({
  name: "demo",
  concurrency: 8,
  metrics: cache.metrics.registry,
  reconcile: async (cluster) => {
    const v = view(cluster.name);
    if (!cache.getConnectionState(cluster).connected) {
      v.stale = true; // the next connection's watches list everything again
      return;
    }
    if (v.stale) {
      v.pods.clear();
      v.configMaps.clear();
      v.stale = false;
    }
    for (const [kind, set] of [[POD, v.pods], [CM, v.configMaps]] as const) {
      // A name already watched on this connection is a no-op; after a reconnect it watches again.
      await cache.watch(cluster, {
        name: `demo-${kind.kind}`,
        kind,
        handler: (e) => {
          v.events++;
          const id = `${e.object.metadata?.namespace}/${e.object.metadata?.name}`;
          if (e.type === "delete") set.delete(id);
          else set.add(id);
        },
      });
    }
  },
});
controller.watchClusters(cache.getClusterSource("demo"));
controller.start();

// Prometheus metrics of the cache and the controller, for `curl` while the demo runs.
const status = statusHandler(cache, { title: "clustercache demo fleet" });
const metricsServer = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/status") return status(request);
    if (path !== "/metrics") return new Response("not found", { status: 404 });
    return new Response(await cache.metrics.registry.metrics(), {
      headers: { "content-type": cache.metrics.registry.contentType },
    });
  },
);
const metricsUrl = `http://127.0.0.1:${metricsServer.addr.port}/metrics`;
const statusUrl = `http://127.0.0.1:${metricsServer.addr.port}/status`;
console.log(`The fleet's status page: ${statusUrl} (metrics: ${metricsUrl})`);

// ------------------------------------------------------------------ load: churn and reads

let readLatencies: number[] = [];
let lastReadP99 = 0;
const healthyForReads = () =>
  fleet.clusters.map((c) => c.name).filter((n) =>
    !story.troubled.has(n) && cache.getConnectionState(key(n)).connected
  );
const reads = setInterval(() => {
  const names = healthyForReads();
  for (let i = 0; i < 10 && names.length > 0; i++) {
    const name = names[Math.floor(Math.random() * names.length)]!;
    const t0 = performance.now();
    cache.getReader(key(name)).list(POD, { namespace: "apps" }).then(
      () => readLatencies.push(performance.now() - t0),
      () => {},
    );
  }
}, 20);
const churn = setInterval(() => {
  for (const cluster of fleet.clusters) {
    if (Math.random() < 0.5 || cluster.listenerState !== "serving") continue;
    const type = cluster.typeOf("", "configmaps")!;
    const objects = cluster.store.list(type, "apps");
    const target = objects[Math.floor(Math.random() * objects.length)];
    if (target) {
      cluster.store.update(type, {
        ...target,
        data: { ...(target.data as object), tick: String(Date.now()) },
      });
    }
  }
}, 250);
const rates = setInterval(() => {
  for (const v of views.values()) {
    v.eventsPerSecond = v.events;
    v.events = 0;
  }
  const sorted = [...readLatencies].sort((a, b) => a - b);
  lastReadP99 = sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
    : 0;
  readLatencies = [];
}, 1_000);

// ------------------------------------------------------------------ the story

const story = {
  log: [] as string[],
  troubled: new Set<string>(),
  say(message: string) {
    const line = `${elapsed().toFixed(0).padStart(3)}s  ${message}`;
    story.log.push(line);
    if (!tty) console.log(line);
  },
};
const at = (fraction: number) => durationS * fraction * 1000;
// Five clusters with a part in the story, all different.
const [hung, rotated, flooded, deleted, refused] =
  (clusterCount >= 9 ? [3, 5, 7, 9, 2] : [3, 4, 5, 6, 2])
    .map((i) => `workload-${i}`) as [string, string, string, string, string];
const newcomer = `workload-${clusterCount + 1}`;
const steps: [number, () => Promise<void> | void][] = [
  [
    0,
    () =>
      story.say(
        `A fleet of ${clusterCount} simulated clusters; the cache connects to each in its own worker.`,
      ),
  ],
  [at(0.06), async () => {
    story.troubled.add(hung);
    await fleet.cluster(hung).hang(true);
    story.say(
      `${hung}'s API server hangs: it accepts connections and never answers. Probes will fail.`,
    );
  }],
  [at(0.22), async () => {
    await fleet.cluster(hung).hang(false);
    story.troubled.delete(hung);
    story.say(`${hung} answers again; the cache reconnects after its retry interval.`);
  }],
  [at(0.3), async () => {
    await fleet.cluster(rotated).rotateCredentials();
    story.say(
      `${rotated}'s credentials are rotated and its kubeconfig Secret updated: the cache reconnects at once.`,
    );
  }],
  [at(0.4), () => {
    story.say(
      `${flooded} floods 20,000 events: its worker absorbs them; reads on other clusters stay fast.`,
    );
    void fleet.cluster(flooded).flood({ count: 20_000, namespace: "flood" });
  }],
  [at(0.55), async () => {
    story.troubled.add(deleted);
    view(deleted).deleted = true;
    await fleet.removeCluster(deleted);
    story.say(`${deleted}'s Cluster object is deleted: the cache disconnects and forgets it.`);
  }],
  [at(0.65), async () => {
    await fleet.addCluster(newcomer);
    await fleet.cluster(newcomer).flood({ count: 25, kind: "pods", namespace: "apps" });
    story.say(`A new cluster, ${newcomer}, is registered: the cache connects to it.`);
  }],
  [at(0.75), async () => {
    story.troubled.add(refused);
    await fleet.cluster(refused).stop();
    story.say(`${refused}'s API server goes down (connection refused).`);
  }],
  [at(0.87), async () => {
    await fleet.cluster(refused).start();
    story.troubled.delete(refused);
    story.say(`${refused} is back; the cache reconnects and its watches resync.`);
  }],
];
const stepTimers = steps.map(([ms, step]) =>
  setTimeout(() => void Promise.resolve(step()).catch((e) => story.say(`step failed: ${e}`)), ms)
);

// ------------------------------------------------------------------ the view

const color = (code: number, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
function stateOf(name: string): { label: string; code: number } {
  if (views.get(name)?.deleted) return { label: "deleted", code: 90 };
  const state = cache.getConnectionState(key(name));
  const health = cache.getHealthCheckingState(key(name));
  if (!state.connected) {
    return { label: health.lastProbeTime ? "disconnected" : "connecting", code: 31 };
  }
  if (health.consecutiveFailures > 0) return { label: `probe failing`, code: 33 };
  return { label: "connected", code: 32 };
}

function render(): string {
  const names = [
    ...fleet.clusters.map((c) => c.name),
    ...(views.get(deleted)?.deleted ? [deleted] : []),
  ]
    .sort((a, b) => Number(a.split("-")[1]) - Number(b.split("-")[1]));
  const connected = names.filter((n) => cache.getConnectionState(key(n)).connected).length;
  const totalEvents = [...views.values()].reduce((sum, v) => sum + v.eventsPerSecond, 0);
  const rss = Deno.memoryUsage().rss / 1e6;
  const lines = [
    color(
      1,
      `clustercache demo  ${elapsed().toFixed(0)}s / ${durationS}s   ` +
        `${connected}/${names.length} connected   ${totalEvents} events/s   ` +
        `read p99 on healthy clusters ${lastReadP99.toFixed(1)} ms   RSS ${rss.toFixed(0)} MB`,
    ),
    `open ${statusUrl} for the status page`,
    "",
    `${"CLUSTER".padEnd(13)} ${"STATE".padEnd(14)} ${"LAST PROBE".padEnd(11)} ${
      "FAILS".padEnd(6)
    } ${"PODS".padEnd(6)} ${"CMS".padEnd(6)} EVENTS/S`,
  ];
  for (const name of names) {
    const state = stateOf(name);
    const health = cache.getHealthCheckingState(key(name));
    const v = view(name);
    const ago = health.lastProbeTime
      ? `${((Date.now() - health.lastProbeTime) / 1000).toFixed(1)}s ago`
      : "-";
    lines.push(
      `${name.padEnd(13)} ${color(state.code, state.label.padEnd(14))} ${ago.padEnd(11)} ` +
        `${String(health.consecutiveFailures).padEnd(6)} ${String(v.pods.size).padEnd(6)} ` +
        `${String(v.configMaps.size).padEnd(6)} ${v.eventsPerSecond}`,
    );
  }
  lines.push("", color(1, "What is happening"), ...story.log.slice(-7));
  return lines.join("\n");
}

const draw = setInterval(() => {
  if (tty) {
    Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[H\x1b[2J${render()}\n`));
  }
}, 500);
const summary = tty ? undefined : setInterval(() => {
  const names = fleet.clusters.map((c) => c.name);
  const counts: Record<string, number> = {};
  for (const n of names) counts[stateOf(n).label] = (counts[stateOf(n).label] ?? 0) + 1;
  console.log(
    `${elapsed().toFixed(0).padStart(3)}s  status: ${
      Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")
    }; ` +
      `read p99 ${lastReadP99.toFixed(1)} ms; RSS ${(Deno.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
}, 5_000);

// ------------------------------------------------------------------ the end

const { promise: finished, resolve: finish } = Promise.withResolvers<string>();
const end = setTimeout(() => finish("the story is over"), durationS * 1000);
const onSignal = () => finish("interrupted");
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const why = await finished;
for (const timer of [reads, churn, rates, draw, summary]) clearInterval(timer);
for (const timer of [end, ...stepTimers]) clearTimeout(timer);
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[H\x1b[2J${render()}\n`));
console.log(`\nDemo ended (${why}). A scrape of ${metricsUrl}, one line per family:`);
const scrape = await (await fetch(metricsUrl)).text();
const shown = new Set<string>();
for (const line of scrape.split("\n")) {
  const family = /^([a-z_]+?)(_bucket|_sum|_count)?[{ ]/.exec(line)?.[1];
  if (!family || shown.has(family) || line.endsWith(" 0")) continue;
  shown.add(family);
  console.log(`  ${line}`);
}
console.log("Closing the controller, the cache and the fleet...");
await controller.stop();
await metricsServer.shutdown();
await cache.close();
await fleet.close();
console.log("Done: every worker, watch and simulated server is stopped.");
Deno.exit(0);
