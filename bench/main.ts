/**
 * `deno task bench [--quick] [--only name,name]`: measures the design against its baselines in the
 * same run (SPEC section 7), prints a table, writes `bench/results/latest.json` (an array of
 * `{ name, value, unit, baseline?, ratio?, goal?, note? }`) and SVG charts of isolation and memory.
 */
import { parseArgs } from "node:util";
import { barChart, type Figure, printTable } from "./lib/report.ts";
import { events } from "./scenarios/events.ts";
import { isolation } from "./scenarios/isolation.ts";
import { lite } from "./scenarios/lite.ts";
import { memory } from "./scenarios/memory.ts";
import { probes } from "./scenarios/probes.ts";
import { readPath } from "./scenarios/read_path.ts";
import { recovery } from "./scenarios/recovery.ts";
import { simFleet } from "./scenarios/sim_fleet.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, only: { type: "string" } },
});
const quick = values.quick ?? false;
const only = values.only ? new Set(values.only.split(",")) : undefined;
const results = new URL("./results/", import.meta.url);
await Deno.mkdir(results, { recursive: true });

const started = performance.now();
const log = (message: string) =>
  console.error(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`);
const figures: Figure[] = [];

async function scenario(name: string, run: () => Promise<Figure[]>): Promise<void> {
  if (only && !only.has(name)) return;
  log(`${name}...`);
  try {
    figures.push(...await run());
  } catch (error) {
    log(`${name} FAILED: ${(error as Error).stack ?? error}`);
    figures.push({
      name: `${name}_failed`,
      value: 1,
      unit: "",
      note: String((error as Error).message ?? error),
    });
  }
}

await scenario("isolation", async () => {
  const result = await isolation(quick, log);
  await Deno.writeTextFile(
    new URL("isolation.svg", results),
    barChart(
      "Cached-read p99 on healthy clusters while another cluster misbehaves",
      "ms",
      result.chart,
    ),
  );
  return result.figures;
});
await scenario("read", () => readPath(quick));
await scenario("memory", async () => {
  const result = await memory(quick, log);
  await Deno.writeTextFile(
    new URL("memory.svg", results),
    barChart("RSS per connected idle cluster", "MB", result.chart),
  );
  return result.figures;
});
await scenario("probes", () => probes(quick, log));
await scenario("events", () => events(quick));
await scenario("lite", () => lite(quick, figures));
await scenario("recovery", () => recovery(quick));
await scenario("sim", () => simFleet(quick));

console.log(
  `\nclustercache bench (${quick ? "quick" : "full"} mode), ${new Date().toISOString()}, ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ${
      (performance.now() - started) / 1000 | 0
    } s\n`,
);
printTable(figures);
const json = JSON.stringify(figures, null, 2) + "\n";
await Deno.writeTextFile(new URL("latest.json", results), json);
if (only) {
  console.log(
    "\nwrote bench/results/latest.json (a partial run: quick.json and full.json are kept)",
  );
} else {
  const kept = quick ? "quick.json" : "full.json"; // the README quotes full.json
  await Deno.writeTextFile(new URL(kept, results), json);
  console.log(`\nwrote bench/results/latest.json and ${kept}, isolation.svg, memory.svg`);
}
if (figures.some((f) => f.name.endsWith("_failed"))) Deno.exit(1);
