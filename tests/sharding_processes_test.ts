/**
 * Sharded replicas as separate processes over one simulated fleet, as they are deployed: every
 * cluster connected by exactly one replica at every sample (from the replicas' own reports and
 * from the management API's Leases), `kill -9` of a replica and its clusters taken over, a fourth
 * replica taking about a quarter, and a partitioned replica (its management credentials refused)
 * letting go before the others take over.
 */
import assert from "node:assert/strict";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually } from "./helpers/fixture.ts";
import { killAll, type Replica, servedTogether, spawn } from "./helpers/shard_replicas.ts";
import { renderKubeconfig } from "../testing/sim/kubeconfig.ts";
import { hash53, ownerOf } from "../src/main/sharding/rendezvous.ts";

const CLUSTERS = 30;
const NAMES = Array.from({ length: CLUSTERS }, (_, i) => `default/workload-${i + 1}`);

Deno.test({
  name:
    "sharding across processes: owned once at every sample; kill -9, a fourth replica, a partition",
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: CLUSTERS });
    const dir = await Deno.makeTempDir({ prefix: "sharding-" });
    const replicas: Replica[] = [];
    const doubles: string[] = [];
    const t0 = Date.now();
    const at = (ms: number) => `+${ms - t0} ms`;
    // Per cluster, each change of who reports it connected and of who holds its fencing Lease, so
    // a failure tells a late report from a double owner.
    const timeline = new Map<string, string[]>();
    const seen = new Map<string, string>();
    const note = (name: string, what: string, state: string, detail: string) => {
      if (seen.get(`${name} ${what}`) === state) return;
      seen.set(`${name} ${what}`, state);
      const lines = timeline.get(name) ?? [];
      lines.push(`${at(Date.now())}: ${what} ${state} (${detail})`);
      timeline.set(name, lines.slice(-12));
    };
    const leases = fleet.management.typeOf("coordination.k8s.io", "leases")!;
    // Per fencing Lease, each tenure seen: who held it, from its acquireTime to the last renewTime
    // seen. The holder wrote both, and held the Lease all along.
    const tenures = new Map<string, { holder: string; from: number; to: number }[]>();
    const found = new Set<string>();
    /** Each double once (`id` names it), however often later reports show it again. */
    const double = (id: string, what: string, history: string) => {
      if (found.has(id)) return;
      found.add(id);
      doubles.push(`${what}\n  ${history}`);
    };
    const check = () => {
      for (const name of NAMES) {
        const fenceName = `clustercache-shard-${hash53(name) % 16}`;
        const fence = fleet.management.store.get(leases, "default", fenceName);
        const spec = fence?.spec as
          | { holderIdentity?: string; acquireTime?: string; renewTime?: string }
          | undefined;
        const holder = (spec?.holderIdentity ?? "").split("_")[0]!;
        if (holder && spec?.acquireTime && spec.renewTime) {
          const list = tenures.get(fenceName) ?? [];
          const from = Date.parse(spec.acquireTime);
          const to = Date.parse(spec.renewTime);
          const last = list.at(-1);
          if (last?.holder === holder && last.from === from) last.to = Math.max(last.to, to);
          else list.push({ holder, from, to });
          tenures.set(fenceName, list);
        }
        const acquired = spec?.acquireTime ? at(Date.parse(spec.acquireTime)) : "never";
        note(name, "fence held by", holder || "nobody", `acquired ${acquired}`);
        for (const r of replicas.filter((r) => r.reportedAt > 0)) {
          const state = r.alive && r.connected.has(name) ? "connected" : "not connected";
          note(name, r.identity, state, `reported ${at(r.reportedAt)}, read ${at(r.receivedAt)}`);
        }
        const history = (timeline.get(name) ?? []).join("\n  ");
        // Reports are read late when a process is starved: each replica stamps its own, and a
        // double is one proven by the stamps, whenever it is read.
        const together = servedTogether(replicas, name);
        if (together) double(together, together, history);
        // The management API agrees: no replica reported the cluster connected while its fencing
        // Lease was another's.
        for (const r of replicas) {
          for (const span of r.spans.get(name) ?? []) {
            for (const t of tenures.get(fenceName) ?? []) {
              const from = Math.max(span.from, t.from);
              if (t.holder === r.identity || from > Math.min(span.to, t.to)) continue;
              double(
                `${name} ${r.identity} ${t.holder} ${t.from}`,
                `${name}: connected by ${r.identity} at ${
                  at(from)
                } while its Lease was held by ${t.holder} (acquired ${at(t.from)}, renewed ${
                  at(t.to)
                })`,
                history,
              );
            }
          }
        }
      }
    };
    const start = async (identity: string, text = fleet.management.kubeconfig()) => {
      const kubeconfig = `${dir}/${identity}.kubeconfig`;
      await Deno.writeTextFile(kubeconfig, text, { mode: 0o600 });
      const replica = spawn(kubeconfig, identity, check);
      replicas.push(replica);
      return replica;
    };
    const owners = (name: string) => replicas.filter((r) => r.alive && r.connected.has(name));
    const settled = (what: string) =>
      eventually(() => NAMES.every((n) => owners(n).length === 1), what, 60_000);
    try {
      for (const identity of ["replica-1", "replica-2", "replica-3"]) await start(identity);
      await settled("each of the 30 clusters connected by exactly one of 3 replicas");
      assert.equal(
        new Set(NAMES.map((n) => owners(n)[0]!.identity)).size,
        3,
        "every replica serves some",
      );
      const fences = () =>
        fleet.management.store.list(leases, "default").filter((l) =>
          l.metadata?.name?.startsWith("clustercache-shard-")
        );
      assert.ok(fences().length > 0, "fencing Leases in the management cluster");

      // kill -9: nothing released; the others take over after a lease duration.
      const victim = replicas[0]!;
      const orphaned = NAMES.filter((n) => victim.connected.has(n));
      victim.child.kill("SIGKILL");
      await victim.child.status;
      victim.alive = false;
      await settled("the killed replica's clusters connected elsewhere");
      assert.ok(orphaned.every((n) => owners(n)[0] !== victim));

      // A fourth replica (now the third live one) takes about its share, only from the others.
      const before = new Map(NAMES.map((n) => [n, owners(n)[0]!.identity]));
      const fourthCertificate = await fleet.management.issueClientCertificate({
        subject: "CN=replica-4,O=system:masters",
      });
      const fourth = await start(
        "replica-4",
        renderKubeconfig({
          name: "management",
          server: fleet.management.url,
          caPem: fleet.management.credentials().caPem,
          user: {
            clientCertificatePem: fourthCertificate.certPem,
            clientKeyPem: fourthCertificate.keyPem,
          },
        }),
      );
      await eventually(() => fourth.connected.size > 0, "the newcomer to serve some", 60_000);
      await settled("the fleet split again");
      const moved = NAMES.filter((n) => before.get(n) !== owners(n)[0]!.identity);
      assert.ok(moved.every((n) => owners(n)[0] === fourth), "clusters move only to the newcomer");
      // Exactly its share: the clusters whose bucket rendezvous hashing gives the newcomer.
      const live = ["replica-2", "replica-3", "replica-4"].map((identity) => ({ identity }));
      const share = NAMES.filter((n) => ownerOf(`bucket-${hash53(n) % 16}`, live) === "replica-4");
      assert.deepEqual(moved.sort(), share.sort(), `${moved.length} of 30 moved`);

      // Partition: the newcomer loses the management API (its certificate refused from now on).
      const its = NAMES.filter((n) => fourth.connected.has(n));
      fleet.management.revokeClientCertificate(fourthCertificate.fingerprint256);
      await eventually(
        () => its.every((n) => !fourth.connected.has(n)),
        "the cut-off replica to let go",
        30_000,
      );
      await settled("the cut-off replica's clusters served by the others");
      assert.ok(its.every((n) => owners(n)[0] !== fourth));
      assert.equal(
        doubles.length,
        0,
        `no cluster was ever connected by two replicas at once; ${doubles.length} found, first:\n${
          doubles.slice(0, 3).join("\n")
        }`,
      );
    } finally {
      await killAll(replicas);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
