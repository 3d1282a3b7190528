/**
 * A restart over a fleet that exists: 1,000 pooled clusters, each with three kinds (Nodes, and
 * ConfigMaps and Pods of ~2 KB), all listed at once by the first reconciles. Peak RSS above the
 * start and the time until every kind of every cluster is read from a synced cache, with the
 * fleet's list budget (the default) and without it, side by side, each in a process of its own.
 */
import { measureInChild } from "../lib/child.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";

interface Restart {
  peakMb: number;
  syncedS: number;
  synced: number;
}

async function restart(dir: string, clusters: number, budget: "on" | "off"): Promise<Restart> {
  return await measureInChild<Restart>(
    new URL("../lib/restart_probe.ts", import.meta.url),
    ["--clusters", String(clusters), "--dir", dir, "--budget", budget],
    `restart probe (${budget})`,
  );
}

export async function restartStorm(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  const clusters = quick ? 100 : 1_000;
  const objects = quick ? 50 : 100;
  await using sim = await startSim(clusters, ["--bookmark-interval-ms", "60000"]);
  for (let i = 1; i <= clusters; i++) {
    for (const kind of ["configmaps", "pods"]) {
      await sim.admin(
        `clusters/workload-${i}/flood?count=${objects}&bytes=2000&namespace=app&kind=${kind}`,
        { method: "POST" },
      );
    }
  }
  log(`restart: ${clusters} clusters x (1 Node, ${objects} ConfigMaps, ${objects} Pods) seeded`);
  const without = await restart(sim.dir, clusters, "off");
  log(
    `restart: without the budget ${without.syncedS.toFixed(1)} s, peak +${
      without.peakMb.toFixed(0)
    } MB`,
  );
  const withIt = await restart(sim.dir, clusters, "on");
  log(
    `restart: with the budget ${withIt.syncedS.toFixed(1)} s, peak +${withIt.peakMb.toFixed(0)} MB`,
  );
  const all = clusters * 3;
  const note =
    `${clusters} pooled clusters x 3 kinds (${objects} ConfigMaps and ${objects} Pods of 2 KB each), all read at once after a start; baseline: without the list budget`;
  const missing = (r: Restart) =>
    r.synced === all ? "" : ` (only ${r.synced} of ${all} kinds synced)`;
  return [
    figure("restart_peak_rss_mb", withIt.peakMb, "MB", {
      baseline: without.peakMb,
      note: `${note}${missing(withIt)}`,
    }),
    figure("restart_all_synced_s", withIt.syncedS, "s", {
      baseline: without.syncedS,
      note: `${note}${missing(withIt)}; without: ${without.syncedS.toFixed(1)} s${
        missing(without)
      }`,
    }),
  ];
}
