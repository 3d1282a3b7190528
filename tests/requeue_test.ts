import assert from "node:assert/strict";
import { minDurationOrDefault, shouldRequeue } from "../src/main/reconcile/requeue.ts";

// Cluster API's TestShouldRequeue (interval 20s).
Deno.test("shouldRequeue() returns the remaining interval, and no requeue once it has passed", () => {
  const now = 1_000_000;
  assert.deepEqual(shouldRequeue(now, 0, 20_000), { afterMs: 0, requeue: false });
  assert.deepEqual(shouldRequeue(now, undefined, 20_000), { afterMs: 0, requeue: false });
  assert.deepEqual(shouldRequeue(now, now - 5_000, 20_000), { afterMs: 15_000, requeue: true });
  assert.deepEqual(shouldRequeue(now, now - 20_000, 20_000), { afterMs: 0, requeue: false });
  assert.deepEqual(shouldRequeue(now, now - 60_000, 20_000), { afterMs: 0, requeue: false });
});

// Cluster API's TestMinDurationOrDefault.
Deno.test("minDurationOrDefault() takes the smallest duration, or the default when there is none", () => {
  assert.equal(minDurationOrDefault([], 10_000), 10_000);
  assert.equal(minDurationOrDefault([5_000, 10_000], 10_000), 5_000);
  assert.equal(minDurationOrDefault([5 * 3_600_000, 10 * 3_600_000], 10_000), 5 * 3_600_000);
});
