/**
 * Sharded replicas as separate processes against real kube-apiservers (`deno task test:real`): the
 * management cluster's real Leases arbitrate. Each workload cluster is connected by exactly one
 * replica at every report, and its fencing Lease names that replica; `kill -9` of a replica and its
 * clusters are taken over.
 */
import assert from "node:assert/strict";
import { hash53 } from "../../src/main/sharding/rendezvous.ts";
import { eventually } from "../helpers/fixture.ts";
import { killAll, type Replica, servedTogether, spawn } from "../helpers/shard_replicas.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";

const BUCKETS = 16; // as tests/fixtures/shard_replica.ts configures them

Deno.test({
  name: "real: sharded replicas over real Leases: each cluster once; kill -9 taken over",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using fleet = await realFleetOrSkip({ clusters: 4 });
    if (!fleet) return;
    const names = fleet.clusters.map((c) => `default/${c.name}`);
    const dir = await Deno.makeTempDir({ prefix: "real-sharding-" });
    const kubeconfig = `${dir}/management.kubeconfig`;
    await Deno.writeTextFile(kubeconfig, fleet.managementKubeconfig(), { mode: 0o600 });
    const replicas: Replica[] = [];
    const doubles: string[] = [];
    const owners = (name: string) => replicas.filter((r) => r.alive && r.connected.has(name));
    const check = () => {
      for (const name of names) {
        const together = servedTogether(replicas, name);
        if (together) doubles.push(together);
      }
    };
    /** The fencing Leases, read from the real management API server, agree with the replicas. */
    const leasesAgree = async () => {
      const list = await fleet.management.request<
        { items: { metadata: { name: string }; spec?: { holderIdentity?: string } }[] }
      >("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases");
      const holders = new Map(
        list.items.map((l) => [l.metadata.name, l.spec?.holderIdentity ?? ""]),
      );
      for (const name of names) {
        const holder = holders.get(`clustercache-shard-${hash53(name) % BUCKETS}`) ?? "";
        const [owner] = owners(name);
        assert.ok(owner, `${name} is served`);
        assert.ok(
          holder.startsWith(`${owner.identity}_`),
          `${name}: served by ${owner.identity}, Lease held by ${holder}`,
        );
      }
    };
    const settled = (what: string) =>
      eventually(() => names.every((n) => owners(n).length === 1), what, 90_000);
    try {
      for (const identity of ["replica-1", "replica-2", "replica-3"]) {
        replicas.push(spawn(kubeconfig, identity, check));
      }
      await settled("each real workload cluster connected by exactly one replica");
      await eventually(
        async () => {
          try {
            await leasesAgree();
            return true;
          } catch {
            return false;
          }
        },
        "the fencing Leases to name the serving replicas",
        30_000,
      );
      const victim = replicas.find((r) => r.connected.size > 0)!;
      const orphaned = names.filter((n) => victim.connected.has(n));
      victim.child.kill("SIGKILL");
      await victim.child.status;
      victim.alive = false;
      await settled("the killed replica's clusters connected elsewhere");
      assert.ok(orphaned.every((n) => owners(n)[0] !== victim));
      await leasesAgree();
      assert.deepEqual(doubles, [], "no cluster was ever connected by two replicas at once");
    } catch (error) {
      for (const r of replicas) {
        console.error(`--- ${r.identity}\n${r.output.join("").slice(-3000)}`);
      }
      throw error;
    } finally {
      await killAll(replicas);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
