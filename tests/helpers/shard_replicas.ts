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
  /** When (epoch ms) the replica took its last report, and when this process read it. */
  reportedAt: number;
  receivedAt: number;
  /** Since which report (epoch ms) each connected cluster has been reported connected. */
  since: Map<string, number>;
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
  const replica: Replica = {
    identity,
    child,
    connected: new Set(),
    reportedAt: 0,
    receivedAt: 0,
    since: new Map(),
    alive: true,
    output: [],
  };
  (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const report = JSON.parse(line);
          replica.connected = new Set(report.connected);
          for (const name of replica.since.keys()) {
            if (!replica.connected.has(name)) replica.since.delete(name);
          }
          for (const name of replica.connected) {
            if (!replica.since.has(name)) replica.since.set(name, report.at);
          }
          replica.reportedAt = report.at;
          replica.receivedAt = Date.now();
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

/**
 * Two replicas whose reports prove they had `name` connected at one same moment: each reported it
 * connected, without a break, from before the other's last report. A starved replica's last report
 * arrives late and says nothing of the time since, so last reports alone prove nothing.
 */
export function servedTogether(replicas: Replica[], name: string): string | undefined {
  const by = replicas.filter((r) => r.alive && r.connected.has(name));
  for (const a of by) {
    for (const b of by) {
      if (a === b) continue;
      const from = Math.max(a.since.get(name)!, b.since.get(name)!);
      if (from <= Math.min(a.reportedAt, b.reportedAt)) {
        return `${name}: connected by ${a.identity} and ${b.identity} at ${from} (epoch ms)`;
      }
    }
  }
  return undefined;
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
