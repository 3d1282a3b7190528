/** The simulator itself: one process serving many small workload clusters, start time and RSS. */
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";

function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
  return kb * 1024;
}

export async function simFleet(quick: boolean): Promise<Figure[]> {
  const n = quick ? 200 : 1000;
  const started = performance.now();
  await using sim = await startSim(n);
  const seconds = (performance.now() - started) / 1000;
  const rss = rssOf(sim.pid);
  return [
    figure(`sim_start_${n}_clusters_s`, seconds, "s", {
      note: "deno task sim until ready (certificates, listeners, registration)",
    }),
    figure(`sim_rss_${n}_clusters_mb`, rss / 1e6, "MB", {
      note: `${(rss / n / 1e6).toFixed(2)} MB per simulated cluster`,
    }),
  ];
}
