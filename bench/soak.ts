/**
 * `deno task soak [--clusters 200] [--minutes 5] [--probe-ms 500] [--pool]`: a compressed endurance
 * run, with a worker per cluster or (`--pool`) pooled workers. Many
 * clusters, fast probes, continuous writes through the cache, and faults injected at random (hangs, refused
 * connections, reset and silenced watches, rotated credentials, restarts that reset or jump
 * resourceVersions, 503 storms). Then every fault is cleared and the run checks that
 *
 * - every cluster reconnects, and its cache equals a fresh list from its server,
 * - a mirror built only from watch events equals it too (no lost, stale or duplicate events),
 * - memory is flat: RSS in the last third of the run is where it was in the first third (under the
 *   same load), the main thread's heap is where it started, and the same number of workers run.
 *
 * Writes `bench/results/soak.json` (`soak-pool.json` with `--pool`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { configure, type LogRecord } from "@logtape/logtape";
import { ClusterCache, type KubeObject, type ObjectKey } from "../mod.ts";
import { liveWorkerCount } from "../src/main/sessions/session.ts";
import { type Figure, figure, printTable } from "./lib/report.ts";
import { startSim } from "../testing/sim_process.ts";
import { openDescriptors, sleep, waitFor } from "./lib/stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clusters: { type: "string" },
    minutes: { type: "string" },
    "probe-ms": { type: "string" },
    pool: { type: "boolean" },
  },
});
const n = Number(values.clusters ?? 200);
const minutes = Number(values.minutes ?? 5);
// 200 clusters probed every 100 ms would be 2,000 probes/s: more than 2 cores serve. 500 ms is 400/s.
const probeMs = Number(values["probe-ms"] ?? 500);
const pool = values.pool ?? false;
const CM = { apiVersion: "v1", kind: "ConfigMap" };
const started = performance.now();
const log = (m: string) =>
  console.error(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${m}`);
const key = (name: string): ObjectKey => ({ namespace: "default", name });
const names = Array.from({ length: n }, (_, i) => `workload-${i + 1}`);

// Warnings per cluster, to explain any cluster that does not converge.
const warnings = new Map<string, string[]>();
await configure({
  sinks: {
    keep: (r: LogRecord) => {
      const cluster = String(r.properties.cluster ?? "");
      const list = warnings.get(cluster) ?? [];
      list.push(
        `${new Date(r.timestamp).toISOString().slice(11, 23)} ${r.message.join("")} ${
          JSON.stringify(r.properties)
        }`,
      );
      if (list.length > 40) list.shift();
      warnings.set(cluster, list);
    },
  },
  loggers: [
    { category: ["clustercache"], lowestLevel: "debug", sinks: ["keep"] },
    { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
  ],
});

await using sim = await startSim(n);
for (const name of names) {
  await sim.admin(`clusters/${name}/flood?count=20&namespace=soak`, { method: "POST" });
}
const cache = await ClusterCache.setup({
  management: sim.management,
  client: { userAgent: "soak", timeoutMs: 5_000 },
  healthProbe: { intervalMs: probeMs, timeoutMs: 1_000, failureThreshold: 3 },
  connectionCreationRetryIntervalMs: 1_000,
  watchIdleTimeoutMs: 5_000,
  workers: { mode: pool ? "pooled" : "dedicated" },
});

// A mirror of each cluster's ConfigMaps built from watch events only, re-watched after every connect.
const mirrors = new Map<string, Map<string, string>>();
const source = cache.getClusterSource("soak", (c) => [c.metadata!.name!]);
source.subscribe((name, event) => {
  if (!event.reasons.includes("connect")) return;
  const mirror = new Map<string, string>();
  mirrors.set(name, mirror);
  cache.watch(key(name), {
    name: "mirror",
    kind: CM,
    predicates: [{ fieldSelector: "metadata.namespace=soak" }],
    handler: (e) => {
      if (mirrors.get(name) !== mirror) return; // a newer connection owns the mirror
      if (e.type === "delete") mirror.delete(e.object.metadata!.name!);
      else mirror.set(e.object.metadata!.name!, e.object.metadata!.resourceVersion!);
    },
  }).catch(() => {}); // dropped before it synced: the next connect watches again
});

await waitFor(
  () => names.every((c) => cache.getConnectionState(key(c)).connected),
  "every cluster to connect",
  300_000,
);
await sleep(5_000);
const rssStart = Deno.memoryUsage().rss;
// With --expose-gc (the soak task passes it) heap samples are taken after a full collection, so
// they show what is retained rather than when the collector last ran.
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapUsed = () => (collect(), Deno.memoryUsage().heapUsed);
const heapStart = heapUsed();
const workersStart = liveWorkerCount();
const descriptorsStart = openDescriptors();
log(
  `connected ${n} clusters; RSS ${
    (rssStart / 1e6).toFixed(0)
  } MB, ${workersStart} workers; soaking for ${minutes} min`,
);

const faults: [string, (c: string) => Promise<unknown>, (c: string) => Promise<unknown>][] = [
  [
    "hang",
    (c) => sim.admin(`clusters/${c}/hang`, { method: "POST" }),
    (c) => sim.admin(`clusters/${c}/unhang`, { method: "POST" }),
  ],
  [
    "refuse",
    (c) => sim.admin(`clusters/${c}/stop`, { method: "POST" }),
    (c) => sim.admin(`clusters/${c}/start`, { method: "POST" }),
  ],
  [
    "reset-watches",
    (c) => sim.admin(`clusters/${c}/drop-watches?mode=reset`, { method: "POST" }),
    () => Promise.resolve(),
  ],
  [
    "close-watches",
    (c) => sim.admin(`clusters/${c}/drop-watches?mode=close`, { method: "POST" }),
    () => Promise.resolve(),
  ],
  [
    "silence",
    (c) => patchFaults(c, { silenceWatches: true }),
    (c) => patchFaults(c, { silenceWatches: false }),
  ],
  [
    "503",
    (c) => patchFaults(c, { errorRate: { rate: 0.7, codes: [503], retryAfterSeconds: 1 } }),
    (c) => patchFaults(c, { errorRate: null }),
  ],
  [
    "rotate",
    (c) => sim.admin(`clusters/${c}/rotate-credentials`, { method: "POST" }),
    () => Promise.resolve(),
  ],
  [
    "restart-reset",
    (c) => sim.admin(`clusters/${c}/restart?mode=reset`, { method: "POST" }),
    () => Promise.resolve(),
  ],
  [
    "restart-jump",
    (c) => sim.admin(`clusters/${c}/restart?mode=jump`, { method: "POST" }),
    () => Promise.resolve(),
  ],
];
function patchFaults(cluster: string, body: unknown) {
  return sim.admin(`clusters/${cluster}/faults`, { method: "PATCH", body: JSON.stringify(body) });
}

let writes = 0;
let writeErrors = 0;
let injected = 0;
const active = new Set<Promise<unknown>>();
const end = Date.now() + minutes * 60_000;
const samples: {
  t: number;
  rss: number;
  heap: number;
  workerHeap: number;
  workers: number;
  connected: number;
}[] = [];
let seq = 0;

async function writer(): Promise<void> {
  while (Date.now() < end) {
    const name = names[Math.floor(Math.random() * n)]!;
    try {
      const client = cache.getClient(key(name));
      // Creates, updates and deletes keep about 30 objects per cluster, so memory can be compared.
      const list = await client.list(CM, { namespace: "soak" });
      const target = list.items[Math.floor(Math.random() * list.items.length)] as
        | KubeObject
        | undefined;
      const roll = Math.random();
      if (!target || (list.items.length < 30 && roll < 0.4)) {
        await client.create({
          ...CM,
          metadata: { name: `soak-${seq++}`, namespace: "soak" },
          data: { v: "0" },
        });
      } else if (list.items.length > 30 && roll < 0.4) {
        await client.delete(CM, { namespace: "soak", name: target.metadata!.name! });
      } else {
        await client.patch(CM, { namespace: "soak", name: target.metadata!.name! }, {
          type: "merge",
          patch: { data: { v: String(seq++) } },
        });
      }
      writes++;
    } catch {
      writeErrors++; // disconnected, 503, conflict: expected under faults
    }
    await sleep(5);
  }
}

async function chaos(): Promise<void> {
  while (Date.now() < end - 10_000) {
    const [kind, start, stop] = faults[Math.floor(Math.random() * faults.length)]!;
    const name = names[Math.floor(Math.random() * n)]!;
    injected++;
    const run = (async () => {
      await start(name).catch(() => {});
      await sleep(1_000 + Math.random() * 4_000);
      await stop(name).catch(() => {});
    })();
    active.add(run);
    void run.finally(() => active.delete(run));
    void kind;
    await sleep(500);
  }
}

/** Sum of the worker heaps the last probes reported (`clustercache_worker_heap_bytes`). */
async function workerHeaps(): Promise<number> {
  let sum = 0;
  for (const line of (await cache.metrics.registry.metrics()).split("\n")) {
    if (line.startsWith("clustercache_worker_heap_bytes{")) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}
const sampler = setInterval(async () => {
  samples.push({
    t: (performance.now() - started) / 1000,
    rss: Deno.memoryUsage().rss,
    heap: heapUsed(),
    workerHeap: await workerHeaps(),
    workers: liveWorkerCount(),
    connected: names.filter((c) => cache.getConnectionState(key(c)).connected).length,
  });
}, 10_000);
await Promise.all([...Array.from({ length: 8 }, writer), chaos()]);
await Promise.all(active);
for (const name of names) await sim.admin(`clusters/${name}/clear-faults`, { method: "POST" });
log(`${injected} faults injected, ${writes} writes (${writeErrors} refused); clearing faults`);

await waitFor(
  () => names.every((c) => cache.getConnectionState(key(c)).connected),
  "every cluster to reconnect",
  300_000,
);
const fingerprint = (items: KubeObject[]) =>
  items.map((o) => `${o.metadata!.name}@${o.metadata!.resourceVersion}`).sort().join(",");
let unconverged: string[] = [];
let lostEvents: string[] = [];
for (let attempt = 0; attempt < 60; attempt++) {
  unconverged = [];
  lostEvents = [];
  for (const name of names) {
    try {
      const cached = fingerprint(
        (await cache.getReader(key(name)).list(CM, { namespace: "soak" })).items,
      );
      const live = fingerprint(
        (await cache.getUncachedClient(key(name)).list(CM, { namespace: "soak" })).items,
      );
      const mirror = [...(mirrors.get(name) ?? new Map())].map(([k, v]) => `${k}@${v}`).sort().join(
        ",",
      );
      if (cached !== live) unconverged.push(name);
      if (mirror !== live) lostEvents.push(name);
    } catch {
      unconverged.push(name);
    }
  }
  if (unconverged.length === 0 && lostEvents.length === 0) break;
  await sleep(2_000);
}
for (const name of new Set([...unconverged, ...lostEvents])) {
  const cached =
    (await cache.getReader(key(name)).list(CM, { namespace: "soak" }).catch(() => ({ items: [] })))
      .items;
  const live =
    (await cache.getUncachedClient(key(name)).list(CM, { namespace: "soak" }).catch(() => ({
      items: [],
    }))).items;
  const ids = (items: KubeObject[]) =>
    new Set(items.map((o) => `${o.metadata!.name}@${o.metadata!.resourceVersion}`));
  const [c, l] = [ids(cached), ids(live)];
  const mirror = new Set([...(mirrors.get(name) ?? new Map())].map(([k, v]) => `${k}@${v}`));
  const metrics = (await cache.metrics.registry.metrics()).split("\n").filter((l) =>
    l.includes(`cluster_name="${name}"`)
  );
  log(`${name} metrics:\n  ${metrics.join("\n  ")}`);
  log(
    `${name} last log records:\n  ${
      (warnings.get(`default/${name}`) ?? []).slice(-15).join("\n  ")
    }`,
  );
  log(
    `${name}: cache-only ${[...c].filter((x) => !l.has(x)).slice(0, 5)}; live-only ${
      [...l].filter((x) => !c.has(x)).slice(0, 5)
    }; ` +
      `mirror-only ${[...mirror].filter((x) => !l.has(x)).slice(0, 5)}; missing-in-mirror ${
        [...l].filter((x) => !mirror.has(x)).slice(0, 5)
      }`,
  );
}
await sleep(5_000);
const rssEnd = Deno.memoryUsage().rss;
const heapEnd = heapUsed();
const workersEnd = liveWorkerCount();
const descriptorsEnd = openDescriptors();
clearInterval(sampler);
log(
  `converged: ${n - unconverged.length}/${n}; event mirrors exact: ${n - lostEvents.length}/${n}`,
);

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const third = Math.max(1, Math.floor(samples.length / 3));
type Series = "rss" | "workerHeap" | "heap";
const early = (key: Series) => median(samples.slice(0, third).map((x) => x[key]));
const middle = (key: Series) => median(samples.slice(third, 2 * third).map((x) => x[key]));
const late = (key: Series) => median(samples.slice(-third).map((x) => x[key]));
const growthPct = (from: number, to: number) => ((to - from) / from) * 100;

/** Median of the first and last thirds of a sampled series, and the growth between them. */
function trend(prefix: string, key: Series, note: string): Figure[] {
  return [
    figure(`${prefix}_first_third_mb`, early(key) / 1e6, "MB", { note }),
    figure(`${prefix}_last_third_mb`, late(key) / 1e6, "MB"),
    figure(`${prefix}_growth_pct`, growthPct(early(key), late(key)), "%", { goal: "flat (< 10)" }),
  ];
}

const figures: Figure[] = [
  figure("soak_minutes", minutes, "min", {
    note: `${n} clusters, ${
      pool ? "pooled" : "dedicated"
    } workers, probes every ${probeMs} ms, 8 writers${
      Deno.env.get("MALLOC_ARENA_MAX")
        ? `, MALLOC_ARENA_MAX=${Deno.env.get("MALLOC_ARENA_MAX")}`
        : ""
    }`,
  }),
  figure("soak_faults_injected", injected, "faults"),
  figure("soak_writes", writes, "writes", { note: `${writeErrors} refused while faults lasted` }),
  figure("soak_clusters_converged", n - unconverged.length, "clusters", { goal: `${n}` }),
  figure("soak_clusters_with_lost_events", lostEvents.length, "clusters", { goal: "0" }),
  ...trend("soak_rss", "rss", "median RSS while faults and writes run"),
  // The first minutes fill caches, connection pools and allocator arenas while every kind of fault
  // happens a first time; whether memory keeps growing after that is what tells a leak.
  figure("soak_rss_growth_after_warmup_pct", growthPct(middle("rss"), late("rss")), "%", {
    goal: "flat (< 10)",
    note: "median RSS of the last third against the middle third",
  }),
  ...trend(
    "soak_worker_heaps",
    "workerHeap",
    "sum of the V8 heaps the workers report with each probe",
  ),
  ...trend(
    "soak_main_heap",
    "heap",
    "the main thread's V8 heap after a full GC (--expose-gc): a leak of ours would show here",
  ),
  figure("soak_rss_after_verification_mb", rssEnd / 1e6, "MB", {
    note: `RSS ${
      (rssStart / 1e6).toFixed(0)
    } MB before the run; the verification lists every cluster three times`,
  }),
  figure("soak_main_heap_start_mb", heapStart / 1e6, "MB"),
  figure("soak_main_heap_end_mb", heapEnd / 1e6, "MB", {
    note: "after the verification, which lists every cluster three times",
  }),
  figure("soak_open_descriptors_end", descriptorsEnd, "fds", {
    goal: `about ${descriptorsStart}`,
    note: `${descriptorsStart} once every cluster had connected, before the faults`,
  }),
  figure("soak_workers_end", workersEnd, "workers", {
    goal: `${workersStart}`,
    note: `${workersStart} at the start${
      pool ? " (pooled: a cluster that crashed or hung its pooled worker keeps its own)" : ""
    }`,
  }),
];
printTable(figures);
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL(`./results/${pool ? "soak-pool" : "soak"}.json`, import.meta.url),
  JSON.stringify(
    {
      figures,
      samples: samples.map((s) => ({
        ...s,
        rss: Math.round(s.rss / 1e6),
        heap: Math.round(s.heap / 1e6),
        workerHeap: Math.round(s.workerHeap / 1e6),
      })),
    },
    null,
    2,
  ) + "\n",
);
source.close();
await cache.close();
if (unconverged.length > 0 || lostEvents.length > 0 || workersEnd !== workersStart) Deno.exit(1);
