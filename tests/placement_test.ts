import assert from "node:assert/strict";
import { PlacementState } from "../src/main/sessions/placement.ts";

const CALM_MS = 1_000;
const high = { level: "high" as const, reason: "objects 52000 > 10000" };
const calm = { level: "calm" as const, reason: "under half of every threshold" };

Deno.test("wanted(): dedicated mode always dedicated; pooled until the load says otherwise", () => {
  const p = new PlacementState();
  assert.equal(p.wanted("dedicated", CALM_MS, 0), "dedicated");
  assert.equal(p.wanted("pooled", CALM_MS, 0), "pooled");
  p.report(high, 10);
  assert.equal(p.wanted("pooled", CALM_MS, 10), "dedicated");
  assert.equal(p.reason, high.reason);
});

Deno.test("wanted(): a cluster that crashed its pooled worker keeps a worker of its own, calm or not", () => {
  const p = new PlacementState();
  p.pin();
  p.report(calm, 0);
  assert.equal(p.wanted("pooled", CALM_MS, 1_000_000), "dedicated");
});

Deno.test("a bursty cluster waits longer for each demotion: it does not flap", () => {
  const p = new PlacementState();
  let now = 0;
  const cycle = () => {
    p.report(high, now);
    assert.equal(p.wanted("pooled", CALM_MS, now), "dedicated");
    p.moved("dedicated");
    now += 100;
    p.report(calm, now);
    const calmAt = now;
    let waited = 0;
    while (p.wanted("pooled", CALM_MS, now) === "dedicated") {
      now += 100;
      waited = now - calmAt;
    }
    p.moved("pooled");
    return waited;
  };
  assert.deepEqual([cycle(), cycle(), cycle()], [0, CALM_MS, 3 * CALM_MS]);
  for (let i = 0; i < 5; i++) cycle();
  assert.equal(cycle(), 15 * CALM_MS, "capped at 2^4 - 1 calm periods");
});

Deno.test("a failed move is tried again after a backoff that doubles; success resets it", () => {
  const p = new PlacementState();
  p.failed(0);
  assert.equal(p.notBefore, 5_000);
  p.failed(5_000);
  assert.equal(p.notBefore, 15_000);
  p.moved("dedicated");
  assert.equal(p.notBefore, 0);
  p.failed(100);
  assert.equal(p.notBefore, 5_100);
});
