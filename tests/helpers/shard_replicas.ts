/**
 * Sharded replicas (tests/fixtures/shard_replica.ts) as separate processes, for the sharding tests
 * against the simulator and against real API servers: each reports what it has connected.
 */

/** One replica process and what it reported last. */
export interface Replica {
  identity: string;
  child: Deno.ChildProcess;
  /** The clusters (`namespace/name`) it reported connected last. */
  connected: Set<string>;
  alive: boolean;
  output: string[];
}

/** Starts a replica with a management kubeconfig file; `onReport` runs after each report. */
export function spawn(kubeconfig: string, identity: string, onReport: () => void): Replica {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../fixtures/shard_replica.ts", import.meta.url).pathname,
      kubeconfig,
      identity,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const replica: Replica = { identity, child, connected: new Set(), alive: true, output: [] };
  (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          replica.connected = new Set(JSON.parse(line).connected);
          onReport();
        } catch {
          replica.output.push(line);
        }
      }
    }
  })();
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      replica.output.push(chunk);
    }
  })();
  return replica;
}

/** Kills every replica still alive (SIGKILL) and waits for them. */
export async function killAll(replicas: Replica[]): Promise<void> {
  for (const r of replicas) {
    if (!r.alive) continue;
    try {
      r.child.kill("SIGKILL");
    } catch { /* gone */ }
    await r.child.status;
    r.alive = false;
  }
}
