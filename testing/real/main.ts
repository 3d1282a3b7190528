/**
 * `deno task real`: runs a fleet of real kube-apiservers until SIGINT or SIGTERM, with the contract
 * of `deno task sim`.
 *
 * ```sh
 * deno task real --clusters 2 --out .real
 * KUBECONFIG=.real/workload-1.kubeconfig kubectl get namespaces
 * ```
 *
 * Builds the `realfleet` Go program first when its cached binary is missing or stale (minutes the
 * first time), writes `DIR/management.kubeconfig` and `DIR/workload-<i>.kubeconfig`, then prints one
 * line containing `ready`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RealFleet } from "./fleet.ts";
import { DEFAULT_KUBERNETES, KUBERNETES_RELEASES, kubernetesRelease } from "./build.ts";

const usage = `Usage: deno task real [--clusters N] [--out DIR] [--auth certificate|token]
                      [--kubernetes ${Object.keys(KUBERNETES_RELEASES).join("|")}|x.y.z]

Starts etcd, a management kube-apiserver and N workload kube-apiservers of one
Kubernetes release (default ${DEFAULT_KUBERNETES}) on 127.0.0.1, writes their
kubeconfigs to DIR and runs until interrupted. Each release is built from Go
modules once and cached.`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        clusters: { type: "string" },
        out: { type: "string" },
        auth: { type: "string" },
        kubernetes: { type: "string" },
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
  const clusters = Number(values.clusters ?? 2);
  if (!Number.isInteger(clusters) || clusters < 0) {
    console.error(`--clusters must be a non-negative integer, got "${values.clusters}"`);
    Deno.exit(2);
  }
  const auth = values.auth ?? "certificate";
  if (auth !== "certificate" && auth !== "token") {
    console.error(`--auth must be certificate or token, got "${auth}"`);
    Deno.exit(2);
  }
  let kubernetes: string;
  try {
    kubernetes = kubernetesRelease(values.kubernetes);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  const out = values.out ?? ".real";
  const started = performance.now();
  const fleet = await RealFleet.start({
    clusters,
    kubernetes,
    dir: `${out}/state`,
    kubeconfigAuth: auth,
    progress: (line) => console.error(line),
  });
  const write = (file: string, text: string) =>
    Deno.writeTextFile(`${out}/${file}`, text, { mode: 0o600 });
  await write("management.kubeconfig", fleet.managementKubeconfig());
  for (const server of fleet.clusters) {
    await write(`${server.name}.kubeconfig`, await fleet.workloadKubeconfig(server.name));
  }
  console.log(
    `ready: management ${fleet.management.url} and ${clusters} workload clusters (real kube-apiservers ${kubernetes}) in ${
      Math.round(performance.now() - started)
    } ms; kubeconfigs in ${out}`,
  );
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", resolve);
  Deno.addSignalListener("SIGTERM", resolve);
  await promise;
  await fleet.close();
  await Deno.remove(`${out}/state`, { recursive: true }).catch(() => {});
  Deno.exit(0);
}

await main();
