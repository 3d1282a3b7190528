/**
 * `deno task bench:memory`: the memory check CI runs. Bytes per pooled cluster (200 connected,
 * idle clusters with one synced Node informer each, in a fresh process) against the reference in
 * `bench/memory_budget.json`: more than its tolerance above fails the run, as kube-rs fails a change
 * at +10% memory, so a regression in bytes per cluster cannot land unseen. Memory, unlike time,
 * barely depends on how busy the machine is; the naive design is measured beside it for context.
 *
 * A change that lowers the figure well below the reference is told to lower the reference too.
 *
 * @module
 */
import { probe } from "./scenarios/memory.ts";
import { startSim } from "../testing/sim_process.ts";

interface Budget {
  clusters: number;
  /** MB of RSS per pooled cluster this project has measured and accepts. */
  pooledMbPerCluster: number;
  /** How far above the reference a run may land (0.10: +10%). */
  tolerance: number;
  measured: string;
}

const budgetUrl = new URL("./memory_budget.json", import.meta.url);
const budget = JSON.parse(await Deno.readTextFile(budgetUrl)) as Budget;
const n = budget.clusters;
let pooledMb: number;
let naiveMb: number;
{
  await using sim = await startSim(n, ["--bookmark-interval-ms", "60000"]);
  const pooled = await probe("ours", n, sim.dir, 3_000, [], "pooled");
  const naive = await probe("naive", n, sim.dir, 3_000);
  if (pooled.synced !== n) {
    console.error(`memory check: only ${pooled.synced} of ${n} pooled clusters synced`);
    Deno.exit(1);
  }
  pooledMb = (pooled.after - pooled.before) / n / 1e6;
  naiveMb = (naive.after - naive.before) / Math.max(1, naive.synced) / 1e6;
}
const limit = budget.pooledMbPerCluster * (1 + budget.tolerance);
const verdict = pooledMb > limit ? "FAILED" : "ok";
console.log(
  `memory check ${verdict}: ${pooledMb.toFixed(3)} MB per pooled cluster at ${n} ` +
    `(reference ${budget.pooledMbPerCluster} MB measured ${budget.measured}, limit ${
      limit.toFixed(3)
    } MB; naive client-node informers ${naiveMb.toFixed(3)} MB in the same run)`,
);
if (pooledMb < budget.pooledMbPerCluster * (1 - 2 * budget.tolerance)) {
  console.log(
    `memory check: well below the reference; lower pooledMbPerCluster in bench/memory_budget.json to ${
      pooledMb.toFixed(2)
    } so the gain is kept`,
  );
}
Deno.exit(verdict === "ok" ? 0 : 1);
