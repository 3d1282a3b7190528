import assert from "node:assert/strict";
import { Deadlines } from "../src/shared/deadlines.ts";

Deno.test("Deadlines expires each entry once, at its time, whatever order they were set in", async () => {
  const expired: [number, number][] = [];
  const started = Date.now();
  const deadlines = new Deadlines((id) => expired.push([id, Date.now() - started]));
  // Plain timers due at the same times, set now: on a busy machine they fire late too, and an
  // entry expires "at its time" when it expires no later than its plain timer does.
  const plain = new Map<number, number>();
  for (const due of [40, 80, 120]) {
    setTimeout(() => plain.set(due, Date.now() - started), due);
  }
  deadlines.set(1, started + 120);
  deadlines.set(2, started + 40); // earlier than the armed one: re-armed
  deadlines.set(3, started + 80);
  deadlines.set(4, started + 60);
  deadlines.delete(4); // answered in time
  while (plain.size < 3 || expired.length < 3) {
    if (Date.now() - started > 10_000) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 100)); // an entry expired twice, or 4 after all, shows here
  assert.deepEqual(expired.map(([id]) => id), [2, 3, 1]);
  for (const [id, at] of expired) {
    const due = { 1: 120, 2: 40, 3: 80 }[id]!;
    const timer = plain.get(due)!;
    assert.ok(
      at >= due - 2 && at <= timer + 25,
      `${id} expired at ${at} ms, due at ${due}; a plain timer due then fired at ${timer} ms`,
    );
  }
  deadlines.stop();
});

Deno.test("Deadlines: answered calls leave at most one timer, which stops when nothing is due", async () => {
  let expired = 0;
  const deadlines = new Deadlines(() => expired++);
  for (let i = 0; i < 1_000; i++) {
    deadlines.set(i, Date.now() + 30);
    deadlines.delete(i);
  }
  await new Promise((r) => setTimeout(r, 60)); // the one timer fired, found nothing, stopped
  assert.equal(expired, 0);
});

Deno.test("Deadlines: entries a late timer finds passed together expire earliest first", async () => {
  const expired: number[] = [];
  const deadlines = new Deadlines((id) => expired.push(id));
  const now = Date.now();
  deadlines.set(1, now - 10); // all passed already: the timer finds them at once
  deadlines.set(2, now - 30);
  deadlines.set(3, now - 20);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(expired, [2, 3, 1]);
  deadlines.stop();
});
