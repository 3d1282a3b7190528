/**
 * Runs the simulated fleet in its own process (`deno task sim`), so the simulator's CPU does not
 * disturb the latencies measured in the benchmark process (or the main-thread stalls a test
 * measures), and drives its switchboard over HTTP.
 */
import { KubeConfig } from "@kubernetes/client-node";

export interface SimProcess extends AsyncDisposable {
  dir: string;
  /** Whether the simulator still runs. */
  readonly alive: boolean;
  adminUrl: string;
  management: KubeConfig;
  kubeconfig(cluster: string): Promise<string>;
  admin(path: string, init?: RequestInit): Promise<unknown>;
  pid: number;
}

export async function startSim(clusters: number, extraArgs: string[] = []): Promise<SimProcess> {
  const dir = await Deno.makeTempDir({ prefix: "clustercache-bench-" });
  const args = [
    "run",
    "--allow-all",
    "--v8-flags=--max-old-space-size=8192",
    new URL("./sim_main.ts", import.meta.url).pathname,
    "--clusters",
    String(clusters),
    "--out",
    dir,
    ...extraArgs,
  ];
  // Two listening sockets per cluster and two descriptors per proxied connection: thousands of
  // clusters need more than the usual 20,000 descriptors (raised where the user may, as root can).
  const child = new Deno.Command("sh", {
    args: ["-c", 'ulimit -n 200000 2>/dev/null || true; exec "$0" "$@"', Deno.execPath(), ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  void child.status.then(() => exited = true);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the simulator exited before it was ready: ${text}`);
    text += value;
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  const adminUrl = (await Deno.readTextFile(`${dir}/admin-url`)).trim();
  const management = new KubeConfig();
  management.loadFromString(await Deno.readTextFile(`${dir}/management.kubeconfig`));
  return {
    dir,
    adminUrl,
    management,
    pid: child.pid,
    get alive() {
      return !exited;
    },
    kubeconfig: (cluster) => Deno.readTextFile(`${dir}/${cluster}.kubeconfig`),
    async admin(path, init) {
      const response = await fetch(adminUrl + path, init);
      const body = await response.text();
      if (!response.ok) throw new Error(`admin ${path}: ${response.status} ${body}`);
      return body ? JSON.parse(body) : undefined;
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      // With a thousand clients just gone, node:https in the simulator can take minutes to wind
      // down its sockets; the benchmark does not need to wait for that.
      const grace = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3_000);
      await child.status;
      clearTimeout(grace);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
