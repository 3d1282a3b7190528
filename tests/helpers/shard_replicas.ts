/**
 * Sharded replicas (tests/fixtures/shard_replica.ts) as separate processes, for the sharding tests
 * against the simulator and against real API servers: each reports what it has connected.
 */

/** From the first to the last report (epoch ms) of a run of reports naming a cluster connected. */
export interface Span {
  from: number;
  to: number;
}

/** One replica process and what it reported. */
export interface Replica {
  identity: string;
  child: Deno.ChildProcess;
  /** The clusters (`namespace/name`) it reported connected last. */
  connected: Set<string>;
  /** When (epoch ms) the replica took its last report. */
  reportedAt: number;
  /** When (epoch ms) this process read that report: late when either process was starved. */
  receivedAt: number;
  /**
   * Per cluster, each span (epoch ms) from the first to the last of consecutive reports that had it
   * connected; the last span grows while it stays connected.
   */
  spans: Map<string, Span[]>;
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
    spans: new Map(),
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
          const was = replica.connected;
          replica.connected = new Set(report.connected);
          for (const name of replica.connected) {
            const spans = replica.spans.get(name) ?? [];
            if (was.has(name)) spans.at(-1)!.to = report.at;
            else spans.push({ from: report.at, to: report.at });
            replica.spans.set(name, spans);
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
 * Two replicas whose reports prove they had `name` connected at one same moment: a span of each
 * (consecutive reports naming it connected) overlaps the other's. A starved replica's last report
 * arrives late and says nothing of the time since, so last reports alone prove nothing; spans,
 * stamped by the replicas themselves, do.
 */
export function servedTogether(replicas: Replica[], name: string): string | undefined {
  for (const a of replicas) {
    for (const b of replicas) {
      if (a === b) continue;
      for (const x of a.spans.get(name) ?? []) {
        for (const y of b.spans.get(name) ?? []) {
          const from = Math.max(x.from, y.from);
          if (from <= Math.min(x.to, y.to)) {
            return `${name}: connected by ${a.identity} and ${b.identity} at ${from} (epoch ms)`;
          }
        }
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
