/**
 * The example operator (examples/configmap_sync) end to end against real kube-apiservers, in its own
 * process: copies appear in every workload cluster, follow the source, come back after drift, and
 * go away with the source; SIGTERM stops it cleanly.
 */
import assert from "node:assert/strict";
import { eventually } from "../helpers/fixture.ts";
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
    const kubeconfig = `${fleet.dir}/operator.kubeconfig`;
    await Deno.writeTextFile(kubeconfig, fleet.managementKubeconfig(), { mode: 0o600 });
    const operator = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../fixtures/configmap_sync_runner.ts", import.meta.url).pathname,
        kubeconfig,
        "default/fleet-settings",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let output = "";
    const reading = (async () => {
      for await (const chunk of operator.stdout.pipeThrough(new TextDecoderStream())) {
        output += chunk;
      }
    })();
    const stderr = new Response(operator.stderr).text();
    let stopped = false;
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
    try {
      await eventually(() => output.includes("ready"), "the operator to start", 30_000);
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
      operator.kill("SIGTERM");
      stopped = true;
      const status = await operator.status;
      await reading;
      assert.equal(status.code, 0, await stderr);
      const outcomes = JSON.parse(output.trim().split("\n").at(-1)!);
      assert.ok(outcomes.created >= 2, output);
      assert.ok(outcomes.deleted >= 2, output);
    } finally {
      if (!stopped) {
        operator.kill("SIGKILL");
        await operator.status;
        console.error(`operator stdout:\n${output}\noperator stderr:\n${await stderr}`);
      }
      await reading.catch(() => {});
      await stderr;
    }
  },
});
