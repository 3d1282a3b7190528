/**
 * Memory: RSS per connected, idle cluster (one synced Node informer each) at several fleet sizes,
 * ours vs naive, each in a fresh process; and cold start (setup until N clusters are connected and
 * synced), from the same runs.
 */
import { measureInChild } from "../lib/child.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";

/** How long a probe may take to connect and sync its clusters before it reports what it reached. */
const BUDGET_MS = 600_000;

export interface Probe {
  before: number;
  after: number;
  connectedS: number;
  syncedS: number;
  /** Clusters connected at the end, and clusters that answered a cached read, within the budget. */
  connected: number;
  synced: number;
}

/** Connects `clusters` clusters in a fresh process, ours (dedicated or pooled workers) or naive. */
export async function probe(
  mode: "ours" | "naive",
  clusters: number,
  dir: string,
  settleMs: number,
  v8Flags: string[] = [],
  workers: "dedicated" | "pooled" = "dedicated",
): Promise<Probe> {
  return await measureInChild<Probe>(
    new URL("../lib/memory_probe.ts", import.meta.url),
    [
      "--mode",
      mode,
      "--clusters",
      String(clusters),
      "--dir",
      dir,
      "--settle",
      String(settleMs),
      "--budget",
      String(BUDGET_MS),
      "--workers",
      workers,
    ],
    `memory probe (${mode}, ${clusters})`,
    ["--max-old-space-size=16384", ...v8Flags],
  );
}

export interface MemoryResult {
  figures: Figure[];
  chart: { label: string; bars: { name: string; value: number }[] }[];
}

export async function memory(quick: boolean, log: (m: string) => void): Promise<MemoryResult> {
  const sizes = quick ? [10, 100] : [10, 100, 1000];
  const figures: Figure[] = [];
  const chart: MemoryResult["chart"] = [];
  for (const n of sizes) {
    await using sim = await startSim(n, ["--bookmark-interval-ms", "60000"]);
    const settleMs = quick ? 1_500 : 3_000;
    const ours = await probe("ours", n, sim.dir, settleMs);
    const naive = n <= 100 || !quick ? await probe("naive", n, sim.dir, settleMs) : undefined;
    // Per cluster that got there: a slow machine may not connect them all within the budget.
    const oursMb = (ours.after - ours.before) / Math.max(1, ours.synced) / 1e6;
    const reached = ours.synced === n;
    if (!reached) {
      log(`memory at ${n} clusters: only ${ours.synced} synced within the budget`);
    }
    figures.push(figure(`clusters_synced_at_${n}`, ours.synced, "clusters", {
      goal: `${n}`,
      note: reached
        ? `all ${n} connected and synced`
        : `only ${ours.synced} of ${n} synced (${ours.connected} connected) within ${
          BUDGET_MS / 1000
        } s: the figures below are per synced cluster`,
    }));
    const naiveMb = naive ? (naive.after - naive.before) / n / 1e6 : Number.NaN;
    log(
      `memory at ${n} clusters: ours ${oursMb.toFixed(2)} MB/cluster, naive ${
        naiveMb.toFixed(2)
      } MB/cluster`,
    );
    chart.push({
      label: `${n} clusters`,
      bars: [{ name: "ours (workers)", value: oursMb }, {
        name: "naive (main thread)",
        value: naiveMb,
      }],
    });
    const suffix = n === 100 ? "" : `_at_${n}`;
    figures.push(figure(`rss_per_cluster_mb${suffix}`, oursMb, "MB", {
      ...(naive ? { baseline: naiveMb } : {}),
      ...(n === 100 ? { goal: "<= 10" } : {}),
      note: `connected, one synced Node informer per cluster; process RSS ${
        (ours.after / 1e6).toFixed(0)
      } MB at ${n}`,
    }));
    if (naive) figures.push(figure(`rss_per_cluster_mb_naive${suffix}`, naiveMb, "MB"));
    if (n === 100) {
      // V8's lite mode (no JIT, lazy feedback vectors) trades speed for memory in every isolate.
      const lite = await probe("ours", n, sim.dir, settleMs, ["--lite-mode"]);
      const liteMb = (lite.after - lite.before) / n / 1e6;
      log(`memory at ${n} clusters with --v8-flags=--lite-mode: ${liteMb.toFixed(2)} MB/cluster`);
      figures.push(figure("rss_per_cluster_mb_lite", liteMb, "MB", {
        baseline: oursMb,
        goal: "<= 10",
        note: "as rss_per_cluster_mb, process run with --v8-flags=--lite-mode; baseline: without",
      }));
    }
    if (n === 100 || n === 1000) {
      figures.push(figure(`cold_start_${n}_s`, reached ? ours.syncedS : Number.NaN, "s", {
        ...(naive ? { baseline: naive.syncedS } : {}),
        ...(n === 1000 ? { goal: "<= 60" } : {}),
        note:
          `setup until ${n} clusters are connected and a Node informer is synced in each (connected after ${
            ours.connectedS.toFixed(1)
          } s)`,
      }));
    }
  }
  return { figures, chart };
}
