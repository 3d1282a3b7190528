/**
 * The example operator (examples/configmap_sync) end to end against real kube-apiservers, in its own
 * process: copies appear in every workload cluster, follow the source, come back after drift, and
 * go away with the source; SIGTERM stops it cleanly.
 */
import assert from "node:assert/strict";
import { eventually } from "../helpers/fixture.ts";
import { startOperator } from "../helpers/operator_process.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";

const SOURCE = "/api/v1/namespaces/default/configmaps";

Deno.test({
  name: "real: the example operator keeps a ConfigMap in every workload cluster in step",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using fleet = await realFleetOrSkip({ clusters: 2 });
    if (!fleet) return;
    await fleet.management.request("POST", SOURCE, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "fleet-settings" },
      data: { logLevel: "info" },
    });
    await using operator = await startOperator(
      fleet.managementKubeconfig(),
      "default/fleet-settings",
    );
    const copy = async (cluster: string) => {
      try {
        return await fleet.cluster(cluster).request<{ data?: Record<string, string> }>(
          "GET",
          `${SOURCE}/fleet-settings`,
        );
      } catch {
        return undefined;
      }
    };
    const everywhere = (check: (data: Record<string, string> | undefined) => boolean) => async () =>
      (await Promise.all(fleet.clusters.map(async (s) => check((await copy(s.name))?.data))))
        .every(Boolean);
    await operator.ready(30_000);
    await eventually(everywhere((d) => d?.logLevel === "info"), "copies everywhere", 30_000);
    await fleet.management.request("PATCH", `${SOURCE}/fleet-settings`, {
      data: { logLevel: "debug" },
    }, "application/merge-patch+json");
    await eventually(everywhere((d) => d?.logLevel === "debug"), "the update everywhere", 30_000);
    // Drift: someone edits a copy; the operator's watch puts it back.
    await fleet.cluster("workload-1").request("PATCH", `${SOURCE}/fleet-settings`, {
      data: { logLevel: "hacked" },
    }, "application/merge-patch+json");
    await eventually(everywhere((d) => d?.logLevel === "debug"), "drift repaired", 30_000);
    await fleet.management.request("DELETE", `${SOURCE}/fleet-settings`);
    await eventually(everywhere((d) => d === undefined), "copies deleted", 30_000);
    const outcomes = await operator.stop();
    assert.ok(outcomes.created! >= 2, JSON.stringify(outcomes));
    assert.ok(outcomes.deleted! >= 2, JSON.stringify(outcomes));
  },
});
