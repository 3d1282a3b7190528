/**
 * `deno task bench [--quick] [--only name,name]`: measures the design against its baselines in the
 * same run (SPEC section 7), prints a table, writes `bench/results/latest.json` (an array of
 * `{ name, value, unit, baseline?, ratio?, goal?, note? }`) and SVG charts of isolation, memory and how cost grows with the fleet.
 */
import { parseArgs } from "node:util";
import { barChart, type Figure, printTable } from "./lib/report.ts";
import { events } from "./scenarios/events.ts";
import { connectedMax, fleet } from "./scenarios/fleet.ts";
import { growth } from "./scenarios/growth.ts";
import { isolation } from "./scenarios/isolation.ts";
import { lite } from "./scenarios/lite.ts";
import { memory } from "./scenarios/memory.ts";
import { probes } from "./scenarios/probes.ts";
import { readPath } from "./scenarios/read_path.ts";
import { recovery } from "./scenarios/recovery.ts";
import { simFleet } from "./scenarios/sim_fleet.ts";
import { sharding } from "./scenarios/sharding.ts";
import { consumers } from "./scenarios/consumers.ts";
import { restartStorm } from "./scenarios/restart.ts";
import { watchList } from "./scenarios/watchlist.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    real: { type: "boolean" },
    only: { type: "string" },
    scenario: { type: "string" },
  },
});
const quick = values.quick ?? false;
// --real: the isolation and read scenarios against real kube-apiservers built from Go modules.
const real = values.real ?? false;
const only = values.only ? new Set(values.only.split(",")) : undefined;
const results = new URL("./results/", import.meta.url);

const started = performance.now();
const log = (message: string) =>
  console.error(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`);

interface ScenarioResult {
  figures: Figure[];
  chart?: { title: string; unit: string; data: Parameters<typeof barChart>[2] };
  /** A chart drawn by the scenario itself. */
  svg?: string;
}

/** Every scenario, in order. Each runs in a fresh process (see below). */
const SCENARIOS: Record<string, () => Promise<ScenarioResult>> = {
  isolation: async () => {
    const result = await isolation(quick, log, real);
    return {
      figures: result.figures,
      chart: {
        title: "Cached-read p99 on healthy clusters while another cluster misbehaves",
        unit: "ms",
        data: result.chart,
      },
    };
  },
  read: async () => ({ figures: await readPath(quick, real) }),
  memory: async () => {
    const result = await memory(quick, log);
    return {
      figures: result.figures,
      chart: { title: "RSS per connected idle cluster", unit: "MB", data: result.chart },
    };
  },
  probes: async () => ({ figures: await probes(quick, log) }),
  events: async () => ({ figures: await events(quick) }),
  recovery: async () => ({ figures: await recovery(quick) }),
  sim: async () => ({ figures: await simFleet(quick) }),
  watchlist: async () => ({ figures: await watchList(quick, log) }),
  sharding: async () => ({ figures: await sharding(quick, log) }),
  consumers: async () => ({ figures: await consumers(quick, log) }),
  restart: async () => ({ figures: await restartStorm(quick, log) }),
  fleet: async () => ({ figures: await fleet(quick, log) }),
  scale: async () => ({ figures: await connectedMax(quick, log) }),
  growth: async () => await growth(quick, log),
};

if (values.scenario) {
  // A child: run one scenario and hand its result to the parent on the last stdout line.
  const run = SCENARIOS[values.scenario];
  if (!run) throw new Error(`unknown scenario ${values.scenario}`);
  console.log(JSON.stringify(await run()));
  Deno.exit(0);
}

await Deno.mkdir(results, { recursive: true });
const figures: Figure[] = [];

function failed(name: string, error: unknown): void {
  log(`${name} FAILED: ${(error as Error).stack ?? error}`);
  figures.push({
    name: `${name}_failed`,
    value: 1,
    unit: "",
    note: String((error as Error).message ?? error),
  });
}

// One process per scenario: what a scenario leaves behind (the naive baseline's heap after a 50k
// relist, garbage, timers) must not slow the next one down. It did: probe lateness at 1,000
// clusters read 2.3 s after the isolation scenario in the same process, 55-80 ms on its own.
async function scenario(name: string): Promise<void> {
  if (only && !only.has(name)) return;
  log(`${name}...`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--max-old-space-size=16384",
      new URL(import.meta.url).pathname,
      "--scenario",
      name,
      ...(quick ? ["--quick"] : []),
      ...(real ? ["--real"] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  try {
    const out = await child.output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    if (out.code !== 0 || !line.startsWith("{")) {
      throw new Error(`the ${name} scenario exited with code ${out.code}`);
    }
    const result = JSON.parse(line) as ScenarioResult;
    figures.push(...result.figures);
    if (result.svg) await Deno.writeTextFile(new URL(`${name}.svg`, results), result.svg);
    if (result.chart) {
      await Deno.writeTextFile(
        new URL(`${name}${real ? "-real" : ""}.svg`, results),
        barChart(result.chart.title, result.chart.unit, result.chart.data),
      );
    }
  } catch (error) {
    failed(name, error);
  }
}

for (const name of ["isolation", "read"]) await scenario(name);
if (real) await finish(); // the other scenarios measure the simulator itself, or need 1,000 clusters
for (const name of ["memory", "probes", "events"]) await scenario(name);
if (!only || only.has("lite")) {
  log("lite...");
  try {
    figures.push(...await lite(quick, figures));
  } catch (error) {
    failed("lite", error);
  }
}
for (
  const name of [
    "recovery",
    "sim",
    "watchlist",
    "sharding",
    "consumers",
    "restart",
    "fleet",
    "scale",
    "growth",
  ]
) {
  await scenario(name);
}
await finish();

async function finish(): Promise<never> {
  console.log(
    `\nclustercache bench (${quick ? "quick" : "full"} mode${
      real ? ", real kube-apiservers" : ""
    }), ${new Date().toISOString()}, ` +
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
    // The README quotes full.json (and real-full.json).
    const kept = `${real ? "real-" : ""}${quick ? "quick" : "full"}.json`;
    await Deno.writeTextFile(new URL(kept, results), json);
    console.log(`\nwrote bench/results/latest.json and ${kept}, and the charts`);
  }
  if (figures.some((f) => f.name.endsWith("_failed"))) Deno.exit(1);
  Deno.exit(0);
}
