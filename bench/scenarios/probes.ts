/**
 * Probes at fleet scale: how late health probes run against their schedule (p99), the CPU the whole
 * process uses while probing, and how long a hung cluster takes to be detected and its disconnect
 * event delivered.
 */
import process from "node:process";
import { ClusterCache } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { type SimProcess, startSim } from "../../testing/sim_process.ts";
import { openDescriptors, percentile, sleep } from "../lib/stats.ts";

/** How long the fleet may take to connect before probing is measured on what did. */
const CONNECT_BUDGET_MS = 600_000;

/** What to probe: how many clusters, in which worker mode, and the figures' name prefix. */
export interface ProbeRun {
  clusters?: number;
  workers?: "dedicated" | "pooled";
  /** Prefixed to every figure's name (`pool_`). */
  prefix?: string;
  /** Also measure how long a hung cluster takes to be detected. Default true. */
  detect?: boolean;
  /** Probe interval; the timeout is half of it. Default 2 s (1 s quick): five times the default rate. */
  intervalMs?: number;
  /** A simulator of `clusters` clusters already running (else one is started). */
  sim?: SimProcess;
}

export async function probes(
  quick: boolean,
  log: (m: string) => void,
  run: ProbeRun = {},
): Promise<Figure[]> {
  const n = run.clusters ?? (quick ? 100 : 1000);
  const prefix = run.prefix ?? "";
  const intervalMs = run.intervalMs ?? (quick ? 1_000 : 2_000);
  const timeoutMs = intervalMs / 2;
  // At least three probes of every cluster.
  const windowMs = Math.max(quick ? 5_000 : 30_000, 3 * intervalMs);
  await using started = run.sim ? undefined : await startSim(n);
  const sim = run.sim ?? started!;
  const descriptors0 = openDescriptors();
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-probes" },
    healthProbe: { intervalMs, timeoutMs, failureThreshold: 3 },
    workers: { mode: run.workers ?? "dedicated" },
  });
  const keys = Array.from(
    { length: n },
    (_, i) => ({ namespace: "default", name: `workload-${i + 1}` }),
  );
  // A slow machine may not connect them all in time: measure those that did, and say so.
  const connectStarted = performance.now();
  const allConnected = () => keys.every((k) => cache.getConnectionState(k).connected);
  while (!allConnected() && performance.now() - connectStarted < CONNECT_BUDGET_MS) {
    if (!sim.alive) throw new Error(`the simulator of ${n} clusters exited`);
    await sleep(100);
  }
  const connectS = (performance.now() - connectStarted) / 1000;
  const connected = keys.filter((k) => cache.getConnectionState(k).connected).length;
  const descriptorsPerCluster = (openDescriptors() - descriptors0) / Math.max(1, connected);
  log(`probes: ${connected} of ${n} clusters connected after ${connectS.toFixed(1)} s`);
  await sleep(intervalMs * 1.5);
  const last = keys.map((k) => cache.getHealthCheckingState(k).lastProbeTime);
  const lateness: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const end = Date.now() + windowMs;
  while (Date.now() < end) {
    keys.forEach((k, i) => {
      const t = cache.getHealthCheckingState(k).lastProbeTime;
      if (t !== last[i]) {
        lateness.push(Math.max(0, t - last[i]! - intervalMs));
        last[i] = t;
      }
    });
    await sleep(20);
  }
  const cpu = process.cpuUsage(cpu0);
  const cores = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  log(`probes: ${lateness.length} probes of ${n} clusters observed`);
  const settings = `probe every ${intervalMs / 1000} s, timeout ${timeoutMs / 1000} s, threshold 3`;
  const figures = [
    figure(`${prefix}probe_clusters_connected_at_${n}`, connected, "clusters", {
      goal: `${n}`,
      note: connected === n
        ? `all connected ${connectS.toFixed(1)} s after setup, ${settings}`
        : `only ${connected} of ${n} connected within ${
          CONNECT_BUDGET_MS / 1000
        } s; lateness is of those`,
    }),
    figure(
      `${prefix}probe_lateness_p99_ms${prefix ? `_at_${n}` : ""}`,
      percentile(lateness, 99),
      "ms",
      {
        goal: "< 1000 at 1,000 clusters",
        note: `${n} clusters, ${run.workers ?? "dedicated"} workers, ${settings}; p50 ${
          percentile(lateness, 50).toFixed(0)
        } ms; sampled every 20 ms`,
      },
    ),
    figure(`${prefix}probe_cpu_cores${prefix ? `_at_${n}` : ""}`, cores, "cores", {
      note: `whole process (main thread + workers) while probing ${n} idle clusters`,
    }),
    figure(`${prefix}descriptors_per_cluster_at_${n}`, descriptorsPerCluster, "fds", {
      note: "open file descriptors of this process per connected cluster (sockets, pipes)",
    }),
  ];
  if (run.detect === false) return figures;

  const victim = keys.find((k) => cache.getConnectionState(k).connected)?.name ?? "workload-1";
  const source = cache.getClusterSource("bench", (c) => [c.metadata!.name!]);
  const { promise: disconnected, resolve } = Promise.withResolvers<number>();
  source.subscribe((request, event) => {
    if (request === victim && event.reasons.includes("disconnect")) resolve(performance.now());
  });
  const hungAt = performance.now();
  await sim.admin(`clusters/${victim}/hang`, { method: "POST" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const given = new Promise<number>((r) => timer = setTimeout(() => r(Number.NaN), 300_000));
  const detectS = ((await Promise.race([disconnected, given])) - hungAt) / 1000;
  clearTimeout(timer);
  source.close();
  await sim.admin(`clusters/${victim}/unhang`, { method: "POST" });
  return [
    ...figures,
    figure(`${prefix}dead_cluster_detect_s`, detectS, "s", {
      note: `hang to disconnect event delivered; ${settings}`,
    }),
  ];
}
