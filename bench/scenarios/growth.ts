/**
 * How cost grows with the fleet: RSS per cluster, cold start and probe lateness at 100, 1,000,
 * 2,000, 5,000 and 10,000 clusters, for pooled workers, dedicated workers and the naive design,
 * each point measured side by side against one simulator of that size, in one run. Written as
 * `bench/results/growth.svg` (three panels) and as figures.
 *
 * Dedicated workers stop at 1,000 clusters: at ~14 MB a cluster, 2,000 would need ~28 GB, more than
 * this machine has. The naive design has no health probes, so no lateness.
 */
import { type Figure, figure, lineCharts, type Series } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";
import { probe } from "./memory.ts";
import { probes } from "./probes.ts";

type Design = "pooled" | "dedicated" | "naive";

/** The largest fleet dedicated workers are tried at (see the module's comment). */
const DEDICATED_MAX = 1_000;

export interface GrowthResult {
  figures: Figure[];
  svg: string;
}

export async function growth(quick: boolean, log: (m: string) => void): Promise<GrowthResult> {
  const sizes = quick ? [20, 100] : [100, 1_000, 2_000, 5_000, 10_000];
  // The naive design first, as the fleet scenario does: a thousand dedicated workers closing their
  // connections leave the simulator busy for a while (a naive cold start measured right after
  // them read 27 s instead of 6 s).
  const designs: Design[] = ["naive", "pooled", "dedicated"];
  const rss = new Map<Design, Series["points"]>(designs.map((d) => [d, []]));
  const cold = new Map<Design, Series["points"]>(designs.map((d) => [d, []]));
  const late = new Map<Design, Series["points"]>(designs.map((d) => [d, []]));
  const figures: Figure[] = [];
  for (const n of sizes) {
    await using sim = await startSim(n, ["--bookmark-interval-ms", "60000"]);
    for (const design of designs) {
      if (design === "dedicated" && n > (quick ? 20 : DEDICATED_MAX)) continue;
      const p = await probe(
        design === "naive" ? "naive" : "ours",
        n,
        sim.dir,
        3_000,
        [],
        design === "naive" ? "dedicated" : design,
      );
      const mb = (p.after - p.before) / Math.max(1, p.synced) / 1e6;
      const complete = p.synced === n ? "" : ` (only ${p.synced} of ${n} synced)`;
      rss.get(design)!.push({ x: n, y: mb });
      cold.get(design)!.push({ x: n, y: p.syncedS });
      figures.push(
        figure(`growth_${design}_rss_per_cluster_mb_at_${n}`, mb, "MB", {
          note: `one synced Node informer a cluster${complete}`,
        }),
        figure(`growth_${design}_cold_start_s_at_${n}`, p.syncedS, "s", {
          note: `setup until every cluster is connected and synced${complete}`,
        }),
      );
      let lateness = Number.NaN;
      if (design !== "naive") {
        const measured = await probes(quick, log, {
          clusters: n,
          workers: design,
          prefix: `growth_${design}_`,
          detect: false,
          intervalMs: 10_000,
          sim,
        });
        lateness = measured[0]!.value === n ? measured[1]!.value : Number.NaN;
        figures.push(
          figure(`growth_${design}_probe_lateness_p99_ms_at_${n}`, measured[1]!.value, "ms", {
            note: `default probe interval (10 s); ${measured[0]!.note ?? ""}`,
          }),
          figure(`growth_${design}_probe_cpu_cores_at_${n}`, measured[2]!.value, "cores", {
            note: "whole process while probing idle clusters every 10 s",
          }),
        );
      }
      late.get(design)!.push({ x: n, y: lateness });
      log(
        `growth: ${design} ${n}: ${mb.toFixed(2)} MB a cluster, cold start ${
          p.syncedS.toFixed(1)
        } s, probe lateness p99 ${lateness.toFixed(0)} ms${complete}`,
      );
    }
  }
  const series = (by: Map<Design, Series["points"]>) =>
    designs.map((name) => ({ name, points: by.get(name)! }));
  return {
    figures,
    svg: lineCharts("How cost grows with the fleet (one process, 2 cores)", [
      { title: "RSS per cluster", unit: "MB, log scale", series: series(rss), logY: true },
      { title: "Cold start", unit: "s", series: series(cold) },
      {
        title: "Probe lateness p99, every 10 s",
        unit: "ms",
        series: series(late).filter((s) => s.name !== "naive"),
      },
    ]),
  };
}
