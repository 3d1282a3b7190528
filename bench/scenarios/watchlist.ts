/**
 * WatchList: the peak heap of a 50,000-Pod initial sync by paged lists against a streaming
 * WatchList (KEP-3157), each in a fresh process running the informer the workers run; and the
 * relists an API server restart costs an informer (client-go's behaviour: none, when the history
 * still holds the last resourceVersion).
 */
import { measureInChild } from "../lib/child.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startSim } from "../../testing/sim_process.ts";

interface Probe {
  before: number;
  peak: number;
  syncS: number;
  objects: number;
  relists: number;
  converged: number;
}

async function probe(mode: "list" | "stream" | "restart", dir: string, admin: string) {
  return await measureInChild<Probe>(
    new URL("../lib/informer_probe.ts", import.meta.url),
    [
      "--mode",
      mode,
      "--dir",
      dir,
      "--admin",
      admin,
      "--namespace",
      "bulk",
    ],
    `informer probe (${mode})`,
    ["--expose-gc", "--max-old-space-size=8192"],
  );
}

export async function watchList(quick: boolean, log: (m: string) => void): Promise<Figure[]> {
  const count = quick ? 5_000 : 50_000;
  await using sim = await startSim(1);
  await sim.admin(`clusters/workload-1/flood?count=${count}&kind=pods&namespace=bulk`, {
    method: "POST",
  });
  const list = await probe("list", sim.dir, sim.adminUrl);
  const stream = await probe("stream", sim.dir, sim.adminUrl);
  const restart = await probe("restart", sim.dir, sim.adminUrl);
  const mb = (p: Probe) => (p.peak - p.before) / 1e6;
  log(
    `watchlist: ${count} Pods, peak heap ${mb(stream).toFixed(0)} MB streamed vs ${
      mb(list).toFixed(0)
    } MB listed; ${restart.relists} relists after a restart`,
  );
  return [
    figure("watchlist_sync_peak_heap_mb", mb(stream), "MB", {
      baseline: mb(list),
      note: `peak heap above the start while syncing ${stream.objects} Pods by WatchList (${
        stream.syncS.toFixed(1)
      } s); baseline: paged lists of 500 (${list.syncS.toFixed(1)} s)`,
    }),
    figure("relists_after_server_restart", restart.relists, "relists", {
      goal: "0",
      note:
        `one Pod informer (${restart.objects} Pods), API server stopped 2 s and started again; ${
          restart.converged - restart.objects
        } Pods created after it arrived by watch`,
    }),
  ];
}
