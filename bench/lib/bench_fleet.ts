/**
 * The fleet a benchmark runs against: the simulator in its own process (default), or real
 * kube-apiservers (`deno task bench --real`), driven through one interface so the isolation and
 * read figures can be put side by side.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { RealFleet } from "../../testing/real/fleet.ts";
import { startSim } from "../../testing/sim_process.ts";

/** What the scenarios need of a fleet. */
export interface BenchFleet extends AsyncDisposable {
  /** `simulator` or `kube-apiserver`. */
  readonly server: string;
  readonly management: KubeConfig;
  kubeconfig(cluster: string): Promise<string>;
  /** Creates `count` objects (ConfigMaps of `bytes` each, or Pods) labelled `flood=true`. */
  flood(
    cluster: string,
    options: { count: number; namespace: string; bytes?: number; kind?: "configmaps" | "pods" },
  ): Promise<void>;
  /** Hangs the cluster's API server (it accepts connections and never answers), or wakes it. */
  hang(cluster: string, hung: boolean): Promise<void>;
}

/** Starts a fleet of `clusters` workload clusters. */
export async function startBenchFleet(real: boolean, clusters: number): Promise<BenchFleet> {
  if (!real) {
    const sim = await startSim(clusters);
    return {
      server: "simulator",
      management: sim.management,
      kubeconfig: (cluster) => sim.kubeconfig(cluster),
      async flood(cluster, { count, namespace, bytes, kind }) {
        const query = `count=${count}&namespace=${namespace}${bytes ? `&bytes=${bytes}` : ""}${
          kind ? `&kind=${kind}` : ""
        }`;
        await sim.admin(`clusters/${cluster}/flood?${query}`, { method: "POST" });
      },
      async hang(cluster, hung) {
        await sim.admin(`clusters/${cluster}/${hung ? "hang" : "unhang"}`, { method: "POST" });
      },
      [Symbol.asyncDispose]: () => sim[Symbol.asyncDispose](),
    };
  }
  const fleet = await RealFleet.start({ clusters, progress: (line) => console.error(line) });
  const management = new KubeConfig();
  management.loadFromString(fleet.managementKubeconfig());
  return {
    server: "kube-apiserver",
    management,
    kubeconfig: (cluster) => fleet.workloadKubeconfig(cluster),
    async flood(cluster, { count, namespace, bytes, kind }) {
      const server = fleet.cluster(cluster);
      const credentials = `${fleet.dir}/${cluster}-flood.json`;
      await Deno.writeTextFile(
        credentials,
        JSON.stringify(server.credentials()),
        {
          mode: 0o600,
        },
      );
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          new URL("./real_flood.ts", import.meta.url).pathname,
          server.url,
          credentials,
          namespace,
          String(count),
          String(bytes ?? 64),
          kind ?? "configmaps",
        ],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!output.success) throw new Error(`flooding ${cluster} failed (exit ${output.code})`);
    },
    hang(cluster, hung) {
      fleet.cluster(cluster).hang(hung);
      return Promise.resolve();
    },
    [Symbol.asyncDispose]: () => fleet.close(),
  };
}
