import assert from "node:assert/strict";
import { goDuration, shouldSendEvent } from "../src/main/sources/source_events.ts";

const now = 10_000_000;
const base = {
  now,
  lastEventSent: 0,
  lastProbeSuccess: 0,
  transitions: [] as ("connect" | "disconnect")[],
};

// Cluster API's TestShouldSentEvent.
Deno.test("shouldSendEvent() gives connect and disconnect reasons, in the order they happened", () => {
  const at = { ...base, lastEventSent: now - 1, lastProbeSuccess: now };
  assert.deepEqual(shouldSendEvent({ ...at, transitions: ["connect"] }, []), ["connect"]);
  assert.deepEqual(shouldSendEvent({ ...at, transitions: ["disconnect"] }, []), ["disconnect"]);
  // A rotated kubeconfig or a crashed worker: disconnected, then connected again.
  assert.deepEqual(shouldSendEvent({ ...at, transitions: ["disconnect", "connect"] }, []), [
    "disconnect",
    "connect",
  ]);
  assert.deepEqual(shouldSendEvent({ ...at, transitions: ["connect", "disconnect"] }, []), [
    "connect",
    "disconnect",
  ]);
});

Deno.test("shouldSendEvent() reports a probe failure only when lastSent < lastSuccess + d < now (strict)", () => {
  const probe = { ...base, lastProbeSuccess: now - 60_000 };
  assert.deepEqual(shouldSendEvent({ ...probe, lastEventSent: now - 40_000 }, [21_000]), [
    "health probe didn't succeed since more than 21s",
  ]);
  assert.deepEqual(shouldSendEvent({ ...probe, lastEventSent: now - 39_000 }, [21_000]), []);
  assert.deepEqual(shouldSendEvent({ ...probe, lastEventSent: now - 39_000 }, [61_000]), []);
  // Exactly at the boundary: not sent (strict comparisons).
  assert.deepEqual(shouldSendEvent({ ...probe, lastEventSent: now - 39_000 }, [60_000]), []);
});

Deno.test("shouldSendEvent() fires one probe-failure event for a cluster that never connected", () => {
  assert.deepEqual(shouldSendEvent({ ...base }, [300_000]), [
    "health probe didn't succeed since more than 5m0s",
  ]);
});

// Cluster API's TestSendEventsToClusterSources, second case, as pure decisions.
Deno.test("only the source whose duration fits gets an event (5s, 30s, 120s)", () => {
  const outcome = { ...base, lastProbeSuccess: now - 60_000, lastEventSent: now - 40_000 };
  assert.deepEqual(shouldSendEvent(outcome, [5_000]), []);
  assert.equal(shouldSendEvent(outcome, [30_000]).length, 1);
  assert.deepEqual(shouldSendEvent(outcome, [120_000]), []);
});

Deno.test("goDuration() renders like Go's Duration.String()", () => {
  assert.equal(goDuration(21_000), "21s");
  assert.equal(goDuration(300_000), "5m0s");
  assert.equal(goDuration(50_000), "50s");
  assert.equal(goDuration(3_600_000), "1h0m0s");
  assert.equal(goDuration(5_400_500), "1h30m0.5s");
  assert.equal(goDuration(1_500), "1.5s");
  assert.equal(goDuration(500), "500ms");
  assert.equal(goDuration(0), "0s");
});
