/**
 * The management connection is probed on the workload clusters' schedule and by their rules: the
 * failure threshold reached rebuilds it, once the management API server answers again.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { eventually, fixture } from "./helpers/fixture.ts";

Deno.test("a management API server that stops answering is reconnected after the failure threshold", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (record) => records.push(record) },
    loggers: [
      { category: ["clustercache"], lowestLevel: "debug", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
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
