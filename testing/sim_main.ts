/**
 * `deno task sim`: runs a simulated fleet until SIGINT or SIGTERM.
 *
 * ```sh
 * deno task sim --clusters 5 --out .sim
 * KUBECONFIG=.sim/workload-1.kubeconfig kubectl get pods -A
 * ```
 *
 * Writes `DIR/management.kubeconfig`, `DIR/workload-<i>.kubeconfig` and `DIR/admin-url` (the fault
 * switchboard), then prints one line containing `ready`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serveAdmin } from "./sim/admin_server.ts";
import { SimulatedFleet } from "./sim/fleet.ts";

const usage = `Usage: deno task sim [--clusters N] [--out DIR] [--bookmark-interval-ms MS]
                     [--watch-timeout-seconds S] [--history-size N]

Starts a management cluster and N workload clusters on 127.0.0.1, writes their
kubeconfigs to DIR and runs until interrupted.`;

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a non-negative integer, got "${text}"`);
    Deno.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        clusters: { type: "string" },
        out: { type: "string" },
        "bookmark-interval-ms": { type: "string" },
        "watch-timeout-seconds": { type: "string" },
        "history-size": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(usage);
    return;
  }
  const clusters = positiveInteger("clusters", values.clusters, 3);
  const out = values.out ?? ".sim";
  const started = performance.now();
  const fleet = await SimulatedFleet.start({
    clusters,
    server: {
      bookmarkIntervalMs: positiveInteger(
        "bookmark-interval-ms",
        values["bookmark-interval-ms"],
        60_000,
      ),
      watchMinTimeoutSeconds: positiveInteger(
        "watch-timeout-seconds",
        values["watch-timeout-seconds"],
        1800,
      ),
      historySize: positiveInteger("history-size", values["history-size"], 1000),
    },
  });
  const admin = serveAdmin(fleet);
  await Deno.mkdir(out, { recursive: true });
  const write = (file: string, text: string) =>
    Deno.writeTextFile(`${out}/${file}`, text, { mode: 0o600 });
  await write("management.kubeconfig", fleet.managementKubeconfig());
  await Promise.all(fleet.clusters.map((c) => write(`${c.name}.kubeconfig`, c.kubeconfig())));
  await write("admin-url", admin.url + "\n");
  for (const cluster of fleet.clusters) {
    cluster.onCredentialsChanged(() =>
      void write(`${cluster.name}.kubeconfig`, cluster.kubeconfig())
    );
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `ready: management ${fleet.management.url} and ${clusters} workload clusters in ${seconds}s; ` +
      `kubeconfigs in ${out}/, admin ${admin.url}`,
  );
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await stopped;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await admin.close();
  await fleet.close();
  console.log("stopped");
  // Every server is closed; node:https leaves per-socket timers that would keep the process up for
  // tens of seconds at 1,000 clusters, so end it now.
  Deno.exit(0);
}

if (import.meta.main) await main();
