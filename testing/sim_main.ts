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
 * Past `--clusters-per-process` (default 2,000) workload clusters, the fleet is spread over several
 * processes, each with its own file descriptors (two listeners per cluster, two descriptors per
 * connection: one process of 5,000 clusters meets the usual 20,000 limit). This process serves the
 * management cluster, which registers every cluster, and the first share; the others serve theirs
 * and end when this one does. The switchboard carries each cluster's requests to its process.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serveAdmin } from "./sim/admin_server.ts";
import { SimulatedFleet } from "./sim/fleet.ts";
import type { SimulatedApiServerOptions } from "./sim/api_server.ts";

const usage = `Usage: deno task sim [--clusters N] [--out DIR] [--bookmark-interval-ms MS]
                     [--watch-timeout-seconds S] [--history-size N]
                     [--clusters-per-process N]

Starts a management cluster and N workload clusters on 127.0.0.1, writes their
kubeconfigs to DIR and runs until interrupted. Fleets larger than
--clusters-per-process (default 2000) are served by several processes.`;

type ServerOptions = Omit<SimulatedApiServerOptions, "name" | "port" | "extraTypes">;

/** Another process serving `count` clusters from `workload-<first>`, started by this one. */
interface Share {
  first: number;
  count: number;
  child: Deno.ChildProcess;
  admin: string;
}

/** How long a share may take to start its clusters (2,000 take ~25 s on 2 busy cores). */
const SHARE_START_TIMEOUT_MS = 600_000;

async function startShare(
  first: number,
  count: number,
  out: string,
  serverArgs: string[],
): Promise<Share> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--max-old-space-size=8192",
      new URL(import.meta.url).pathname,
      "--serve-share",
      "--first",
      String(first),
      "--clusters",
      String(count),
      "--out",
      out,
      ...serverArgs,
    ],
    // Its stdin is this process: when this process ends, however it ends, the share sees EOF and stops.
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, SHARE_START_TIMEOUT_MS);
  try {
    while (!/^ready (\S+)$/m.test(text)) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(`the simulator serving workload-${first}.. exited before it was ready`);
      }
      text += value;
    }
  } finally {
    clearTimeout(timer);
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return { first, count, child, admin: /^ready (\S+)$/m.exec(text)![1]! };
}

async function stopShare(share: Share): Promise<void> {
  try {
    share.child.kill("SIGTERM");
  } catch { /* gone */ }
  const grace = setTimeout(() => {
    try {
      share.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 5_000);
  await share.child.status;
  clearTimeout(grace);
  await share.child.stdin.close().catch(() => {});
}

/** Resolves on SIGINT, SIGTERM or (for a share) the end of stdin. */
function untilStopped(watchStdin: boolean): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", resolve);
  Deno.addSignalListener("SIGTERM", resolve);
  if (watchStdin) {
    void (async () => {
      for await (const _ of Deno.stdin.readable) { /* the parent writes nothing */ }
    })().catch(() => {}).finally(resolve);
  }
  return promise.finally(() => {
    Deno.removeSignalListener("SIGINT", resolve);
    Deno.removeSignalListener("SIGTERM", resolve);
  });
}

/** A share: workload clusters from `first`, unregistered, with a switchboard of their own. */
async function serveShare(
  first: number,
  count: number,
  out: string,
  server: ServerOptions,
): Promise<void> {
  // The fleet's own management cluster stays idle here: the parent's registers these clusters.
  const fleet = await SimulatedFleet.start({ server });
  const concurrency = 50;
  for (let i = first; i < first + count; i += concurrency) {
    const batch = [];
    for (let j = i; j < Math.min(i + concurrency, first + count); j++) {
      batch.push(fleet.addCluster(`workload-${j}`, { register: false }));
    }
    await Promise.all(batch);
  }
  const admin = serveAdmin(fleet);
  await writeKubeconfigs(fleet, out);
  console.log(`ready ${admin.url}`);
  await untilStopped(true);
  await admin.close();
  await fleet.close();
  Deno.exit(0);
}

function writeKubeconfigs(fleet: SimulatedFleet, out: string): Promise<unknown> {
  const write = (file: string, text: string) =>
    Deno.writeTextFile(`${out}/${file}`, text, { mode: 0o600 });
  for (const cluster of fleet.clusters) {
    cluster.onCredentialsChanged(() =>
      void write(`${cluster.name}.kubeconfig`, cluster.kubeconfig())
    );
  }
  return Promise.all(fleet.clusters.map((c) => write(`${c.name}.kubeconfig`, c.kubeconfig())));
}

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
        "clusters-per-process": { type: "string" },
        // Internal: this process serves one share of a fleet spread over several processes.
        "serve-share": { type: "boolean" },
        first: { type: "string" },
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
  const server: ServerOptions = {
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
  };
  await Deno.mkdir(out, { recursive: true });
  if (values["serve-share"]) {
    return await serveShare(positiveInteger("first", values.first, 1), clusters, out, server);
  }
  const perProcess = Math.max(
    1,
    positiveInteger("clusters-per-process", values["clusters-per-process"], 2_000),
  );
  const local = Math.min(clusters, perProcess);
  const serverArgs = [
    "--bookmark-interval-ms",
    String(server.bookmarkIntervalMs),
    "--watch-timeout-seconds",
    String(server.watchMinTimeoutSeconds),
    "--history-size",
    String(server.historySize),
  ];
  const shares: Promise<Share>[] = [];
  for (let first = local + 1; first <= clusters; first += perProcess) {
    shares.push(startShare(first, Math.min(perProcess, clusters - first + 1), out, serverArgs));
  }
  const [fleet, ...others] = await Promise.allSettled([
    SimulatedFleet.start({ clusters: local, server }),
    ...shares,
  ]);
  const running = others.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = [fleet, ...others].find((s) => s.status === "rejected");
  if (failed || fleet.status !== "fulfilled") {
    await Promise.all(running.map(stopShare));
    if (fleet.status === "fulfilled") await fleet.value.close();
    console.error(`the simulator could not start: ${(failed as PromiseRejectedResult).reason}`);
    Deno.exit(1);
  }
  const remotes = new Map<string, string>();
  for (const share of running) {
    for (let i = share.first; i < share.first + share.count; i++) {
      const name = `workload-${i}`;
      const kubeconfig = await Deno.readTextFile(`${out}/${name}.kubeconfig`);
      const port = Number(new URL(/server: (\S+)/.exec(kubeconfig)![1]!).port);
      fleet.value.registerExternalCluster(name, { port, kubeconfig });
      remotes.set(name, share.admin);
    }
  }
  const admin = serveAdmin(fleet.value, { remotes });
  await Deno.writeTextFile(`${out}/management.kubeconfig`, fleet.value.managementKubeconfig(), {
    mode: 0o600,
  });
  await writeKubeconfigs(fleet.value, out);
  await Deno.writeTextFile(`${out}/admin-url`, admin.url + "\n", { mode: 0o600 });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const processes = running.length ? ` (${running.length + 1} processes)` : "";
  console.log(
    `ready: management ${fleet.value.management.url} and ${clusters} workload clusters in ${seconds}s${processes}; ` +
      `kubeconfigs in ${out}/, admin ${admin.url}`,
  );
  await untilStopped(false);
  await admin.close();
  await Promise.all([fleet.value.close(), ...running.map(stopShare)]);
  console.log("stopped");
  // Every server is closed; node:https leaves per-socket timers that would keep the process up for
  // tens of seconds at 1,000 clusters, so end it now.
  Deno.exit(0);
}

if (import.meta.main) await main();
