/**
 * The management connection is probed on the workload clusters' schedule and by their rules: the
 * failure threshold reached rebuilds it, once the management API server answers again.
 */
import assert from "node:assert/strict";
import { configure, reset } from "@logtape/logtape";
import { KubeConfig } from "@kubernetes/client-node";
import { ManagementCluster } from "../src/main/management/management_cluster.ts";
import { resolveOptions } from "../src/main/options.ts";
import { workerOptionsFlag } from "../src/main/sessions/worker_options_flag.ts";
import { SimulatedFleet } from "../testing/mod.ts";
import { eventually, fixture } from "./helpers/fixture.ts";
import { captureLogs } from "./helpers/logs.ts";

Deno.test("a management API server that stops answering is reconnected after the failure threshold", async () => {
  const records = await captureLogs();
  try {
    await using f = await fixture({ clusters: 1 }, {
      healthProbe: { intervalMs: 100, timeoutMs: 200, failureThreshold: 3 },
    });
    await f.connected("workload-1");
    const said = (text: string) => records.some((r) => r.message.join("").includes(text));
    await f.fleet.management.hang(true);
    await eventually(
      () => said("The management cluster failed its health probes; reconnecting"),
      "the management connection to give up on its probes",
    );
    const failed = records.filter((r) =>
      r.message.join("").includes("The management cluster's health probe failed")
    );
    assert.equal(failed.length, 2, "two failures logged, the third reconnects");
    await f.fleet.management.hang(false);
    await eventually(() => said("Reconnected to the management cluster"), "a reconnect");
    // The new connection serves: a Cluster added now is connected.
    await f.fleet.addCluster("workload-2");
    await f.connected("workload-2");
  } finally {
    await reset();
  }
});

Deno.test("a rebuilt management connection starts healthy: the old connection's failures do not end it at its first one", async () => {
  await using fleet = await SimulatedFleet.start({ clusters: 0 });
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromString(fleet.managementKubeconfig());
  const options = resolveOptions({
    management: kubeconfig,
    client: { userAgent: "clustercache-tests", timeoutMs: 2_000 },
    healthProbe: { intervalMs: 100, timeoutMs: 200, failureThreshold: 3 },
  }, workerOptionsFlag);
  let management: ManagementCluster | undefined;
  let failuresAtReconnect: number | undefined;
  await configure({
    sinks: {
      capture: (record) => {
        if (record.message.join("").includes("Reconnected to the management cluster")) {
          failuresAtReconnect ??= management!.health.consecutiveFailures;
        }
      },
    },
    loggers: [
      { category: ["clustercache"], lowestLevel: "info", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    management = await ManagementCluster.start(options, () => {}, () => "inherit");
    await fleet.management.hang(true);
    await eventually(() => management!.health.consecutiveFailures >= 3, "the probes to fail");
    await fleet.management.hang(false);
    await eventually(() => failuresAtReconnect !== undefined, "a reconnect");
    assert.equal(failuresAtReconnect, 0, "healthy from the reconnect on");
  } finally {
    management?.close();
    await reset();
  }
});

Deno.test("a management mirror whose watch is refused while GET / answers is noticed and rebuilt; one that merely fails is left to retry", async () => {
  const records = await captureLogs();
  try {
    // Probes that a slow machine does not fail: only the mirror's watch fails here.
    await using f = await fixture({ clusters: 1 }, {
      healthProbe: { intervalMs: 100, timeoutMs: 3_000, failureThreshold: 3 },
    });
    await f.connected("workload-1");
    const said = (text: string) => records.some((r) => r.message.join("").includes(text));
    const rebuilt = "keeps refusing the watch of a mirrored kind; reconnecting";
    // An overloaded server failing the Cluster watch for 5 probe budgets: the informer retries.
    f.fleet.management.failRequests({ method: "GET", path: /\/clusters$/ }, 1_000_000, 503);
    f.fleet.management.dropWatches("close");
    await eventually(
      () => records.some((r) => r.message.join("").includes("Informer list or watch failed")),
      "the mirror's watch to fail",
    );
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(said(rebuilt), false, "a failure that is not a refusal is left to retry");
    await f.fleet.management.clearFaults();
    // RBAC starts refusing the Cluster watch: the mirror would go stale while probes pass.
    f.fleet.management.failRequests({ method: "GET", path: /\/clusters$/ }, 1_000_000, 403);
    f.fleet.management.dropWatches("close");
    await eventually(() => said(rebuilt), "the management connection to notice its mirror refused");
    // Once it may read Clusters again, a Cluster added now is connected.
    await f.fleet.management.clearFaults();
    await f.fleet.addCluster("workload-2");
    await f.connected("workload-2", 40_000);
  } finally {
    await reset();
  }
});
