import assert from "node:assert/strict";
import { AimdLimit } from "../src/main/reconcile/aimd_limit.ts";

/** Fills the limit, then lets every attempt succeed: one round of a fleet connecting. */
async function fullRounds(admission: AimdLimit, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const attempts = await Promise.all(
      Array.from({ length: Math.floor(admission.limit) }, () => admission.acquire()),
    );
    for (const a of attempts) a.release("success");
  }
}

function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => now += ms };
}

Deno.test("admission: at most floor(limit) attempts at once, the rest wait in order", async () => {
  const admission = new AimdLimit({ initial: 2, min: 1, max: 8 });
  const first = await admission.acquire();
  const second = await admission.acquire();
  const order: string[] = [];
  const third = admission.acquire().then((a) => (order.push("third"), a));
  const fourth = admission.acquire().then((a) => (order.push("fourth"), a));
  await Promise.resolve();
  assert.equal(admission.inFlight, 2);
  assert.equal(admission.waiting, 2);
  first.release("neutral");
  (await third).release("neutral");
  second.release("neutral");
  (await fourth).release("neutral");
  assert.deepEqual(order, ["third", "fourth"]);
  assert.equal(admission.inFlight, 0);
  assert.equal(admission.limit, 2, "neutral outcomes leave the limit alone");
});

Deno.test("admission: before any overload each success widens the limit by one, up to max", async () => {
  const admission = new AimdLimit({ initial: 2, min: 1, max: 64 });
  // A round of attempts, all successful: the limit doubles, as TCP's slow start does.
  const round = await Promise.all(Array.from({ length: 2 }, () => admission.acquire()));
  for (const a of round) a.release("success");
  assert.equal(admission.limit, 4);
  const next = await Promise.all(Array.from({ length: 4 }, () => admission.acquire()));
  for (const a of next) a.release("success");
  assert.equal(admission.limit, 8);
  await fullRounds(admission, 10);
  assert.equal(admission.limit, 64);
});

Deno.test("admission: successes widen only a limit that held attempts back", async () => {
  const admission = new AimdLimit({ initial: 4, min: 1, max: 64 });
  // A trickle: one attempt at a time never needs more room, however many succeed.
  for (let i = 0; i < 100; i++) (await admission.acquire()).release("success");
  assert.equal(admission.limit, 4);
  // One waiting behind a full limit: that success counts.
  const full = await Promise.all(Array.from({ length: 4 }, () => admission.acquire()));
  const waiter = admission.acquire();
  full[0]!.release("success");
  assert.equal(admission.limit, 5);
  for (const a of full.slice(1)) a.release("neutral");
  (await waiter).release("neutral");
});

Deno.test("admission: after an overload successes widen the limit by 1/limit each, up to max", async () => {
  const c = clock();
  const admission = new AimdLimit({ initial: 4, min: 1, max: 3, now: c.now });
  c.advance(1);
  (await admission.acquire()).release("overload");
  assert.equal(admission.limit, 1.5);
  // One at a time fills a limit of 1.5 (floor 1): that success counts; at 2.17 one alone does not.
  for (let i = 0; i < 2; i++) (await admission.acquire()).release("success");
  assert.equal(admission.limit, 1.5 + 1 / 1.5);
  await fullRounds(admission, 20);
  assert.equal(admission.limit, 3);
});

Deno.test("admission: an overload halves the limit once per episode, never below min", async () => {
  const c = clock();
  const admission = new AimdLimit({ initial: 16, min: 2, max: 64, now: c.now });
  const episode = await Promise.all(Array.from({ length: 8 }, () => admission.acquire()));
  c.advance(100);
  episode[0]!.release("overload");
  assert.equal(admission.limit, 8);
  // Admitted before that decrease: the same episode, already answered.
  for (const a of episode.slice(1)) a.release("overload");
  assert.equal(admission.limit, 8);
  c.advance(100);
  (await admission.acquire()).release("overload");
  assert.equal(admission.limit, 4);
  c.advance(100);
  (await admission.acquire()).release("overload");
  c.advance(100);
  (await admission.acquire()).release("overload");
  assert.equal(admission.limit, 2, "min holds");
});

Deno.test("admission: a narrowed limit admits waiters only as attempts finish", async () => {
  const c = clock();
  const admission = new AimdLimit({ initial: 4, min: 1, max: 8, now: c.now });
  const held = await Promise.all(Array.from({ length: 4 }, () => admission.acquire()));
  let admitted = 0;
  const waiters = Array.from({ length: 2 }, () => admission.acquire().then((a) => (admitted++, a)));
  c.advance(10);
  held[0]!.release("overload"); // limit 2, 3 still in flight
  await Promise.resolve();
  assert.equal(admitted, 0);
  held[1]!.release("neutral");
  held[2]!.release("neutral"); // 1 in flight: one waiter fits
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(admitted, 1);
  held[3]!.release("neutral");
  for (const w of waiters) (await w).release("neutral");
  assert.equal(admitted, 2);
});

Deno.test("admission: an aborted wait gives up its place and rejects with the reason", async () => {
  const admission = new AimdLimit({ initial: 1, min: 1, max: 1 });
  const held = await admission.acquire();
  const controller = new AbortController();
  const waiting = admission.acquire(controller.signal);
  const next = admission.acquire();
  controller.abort(new Error("closed"));
  await assert.rejects(waiting, /closed/);
  assert.equal(admission.waiting, 1);
  held.release("neutral");
  (await next).release("neutral");
  await assert.rejects(admission.acquire(controller.signal), /closed/);
  assert.equal(admission.inFlight, 0);
});

Deno.test("admission: release is idempotent", async () => {
  const admission = new AimdLimit({ initial: 1, min: 1, max: 4 });
  const a = await admission.acquire();
  a.release("success");
  a.release("success");
  assert.equal(admission.inFlight, 0);
  assert.equal(admission.limit, 2, "one success counted once");
});
