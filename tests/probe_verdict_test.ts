import assert from "node:assert/strict";
import { probeVerdict, starved } from "../src/shared/probe_verdict.ts";

const failed = {
  ok: false,
  unauthorized: false,
  workerStarved: false,
  unanswered: false,
  mainLagMs: 0,
  timeoutMs: 5_000,
};

Deno.test("starved(): later than half the timeout and than 250 ms", () => {
  assert.equal(starved(2_500, 5_000), false);
  assert.equal(starved(2_501, 5_000), true);
  assert.equal(starved(250, 200), false, "250 ms is the floor for short timeouts");
  assert.equal(starved(251, 200), true);
});

Deno.test("probeVerdict(): success, 401 and plain failures as Cluster API counts them", () => {
  assert.equal(probeVerdict({ ...failed, ok: true }), "success");
  assert.equal(probeVerdict({ ...failed, unauthorized: true }), "unauthorized");
  assert.equal(probeVerdict(failed), "failure");
  // An unanswered worker while this thread ran on time: the worker (or its cluster) is stuck.
  assert.equal(probeVerdict({ ...failed, unanswered: true, mainLagMs: 100 }), "failure");
});

Deno.test("probeVerdict(): starvation of this process makes a timeout inconclusive", () => {
  assert.equal(probeVerdict({ ...failed, workerStarved: true }), "inconclusive");
  assert.equal(probeVerdict({ ...failed, unanswered: true, mainLagMs: 3_000 }), "inconclusive");
  // A lagging main thread does not excuse an answer that came back as a failure.
  assert.equal(probeVerdict({ ...failed, mainLagMs: 3_000 }), "failure");
  // Nor does it hide a 401.
  assert.equal(probeVerdict({ ...failed, unauthorized: true, mainLagMs: 3_000 }), "unauthorized");
});
