import assert from "node:assert/strict";
import { ClusterCacheError } from "../mod.ts";
import { refill, TokenBucket } from "../src/shared/token_bucket.ts";

function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => now += ms };
}

Deno.test("token bucket: the burst is free, then reservations queue at 1/qps each", () => {
  const c = clock();
  const bucket = new TokenBucket(10, 2, c);
  assert.equal(bucket.reserve().waitMs, 0);
  assert.equal(bucket.reserve().waitMs, 0);
  assert.equal(bucket.reserve().waitMs, 100);
  assert.equal(bucket.reserve().waitMs, 200);
  c.advance(1_000); // refills to the burst, not beyond
  assert.equal(refill(-2, 0, 1_000, 10, 2), 2);
});

Deno.test("token bucket: cancelled reservations give their tokens back", () => {
  const c = clock();
  const bucket = new TokenBucket(10, 1, c);
  bucket.reserve();
  // A burst of calls that all time out while waiting...
  const waiting = Array.from({ length: 20 }, () => bucket.reserve());
  assert.equal(waiting.at(-1)!.waitMs, 2_000);
  for (const r of waiting) {
    r.cancel();
    r.cancel(); // idempotent
  }
  // ...does not delay the next call.
  assert.equal(bucket.reserve().waitMs, 100);
});

Deno.test("token bucket: a wait past the deadline is refused at once and costs no token", async () => {
  const c = clock();
  const bucket = new TokenBucket(1, 1, c);
  await bucket.take();
  await assert.rejects(
    bucket.take(undefined, 500),
    (e: Error) =>
      e instanceof ClusterCacheError && e.code === "Timeout" && /deadline/.test(e.message),
  );
  assert.equal(bucket.reserve().waitMs, 1_000, "the refused call left the queue as it was");
});

Deno.test("token bucket: an aborted wait rejects with the reason and gives the token back", async () => {
  const c = clock();
  const bucket = new TokenBucket(1, 1, c);
  await bucket.take();
  const controller = new AbortController();
  const waiting = bucket.take(controller.signal);
  controller.abort(new Error("gave up"));
  await assert.rejects(waiting, /gave up/);
  assert.equal(bucket.reserve().waitMs, 1_000);
  await assert.rejects(bucket.take(controller.signal), /gave up/);
});
