import assert from "node:assert/strict";
import { ownerOf, type ShardMember } from "../src/main/sharding/rendezvous.ts";

const keys = Array.from({ length: 2000 }, (_, i) => `default/workload-${i}`);
const members = (...names: string[]): ShardMember[] => names.map((identity) => ({ identity }));

function assignment(list: ShardMember[]): Map<string, string> {
  return new Map(keys.map((k) => [k, ownerOf(k, list)!]));
}

Deno.test("ownerOf() spreads keys evenly and is the same for every order of members", () => {
  const a = assignment(members("r1", "r2", "r3"));
  const b = assignment(members("r3", "r1", "r2"));
  assert.deepEqual([...a], [...b]);
  const counts = Map.groupBy([...a.values()], (o) => o);
  for (const [owner, owned] of counts) {
    assert.ok(owned.length > 550 && owned.length < 790, `${owner} owns ${owned.length} of 2000`);
  }
});

Deno.test("ownerOf(): a joining member takes about its share, only from others, to itself", () => {
  const before = assignment(members("r1", "r2", "r3"));
  const after = assignment(members("r1", "r2", "r3", "r4"));
  const moved = keys.filter((k) => before.get(k) !== after.get(k));
  assert.ok(moved.every((k) => after.get(k) === "r4"), "every moved key moved to the new member");
  assert.ok(moved.length > 400 && moved.length < 600, `${moved.length} of 2000 moved (1/4 is 500)`);
});

Deno.test("ownerOf(): a leaving member's keys are spread; no other key moves", () => {
  const before = assignment(members("r1", "r2", "r3", "r4"));
  const after = assignment(members("r1", "r2", "r4"));
  for (const k of keys) {
    if (before.get(k) !== "r3") assert.equal(after.get(k), before.get(k), k);
    else assert.notEqual(after.get(k), "r3");
  }
});

Deno.test("ownerOf(): weights set the shares; weight 0 and no members own nothing", () => {
  const owners = assignment([{ identity: "big", weight: 3 }, { identity: "small", weight: 1 }]);
  const big = [...owners.values()].filter((o) => o === "big").length;
  assert.ok(big > 1400 && big < 1600, `big owns ${big} of 2000 (3/4 is 1500)`);
  assert.equal(ownerOf("k", [{ identity: "off", weight: 0 }]), undefined);
  assert.equal(ownerOf("k", []), undefined);
});
