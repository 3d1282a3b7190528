import assert from "node:assert/strict";
import { jsonParts } from "../src/shared/json_parts.ts";

Deno.test("jsonParts() cuts items into JSON arrays of at most maxBytes, in order, none lost", () => {
  const items = Array.from(
    { length: 1_000 },
    (_, i) => ({ name: `item-${i}`, pad: "x".repeat(i % 50) }),
  );
  const parts = jsonParts(items, 4_096);
  assert.ok(parts.length > 5);
  for (const part of parts) assert.ok(part.length <= 4_096, `a part of ${part.length} bytes`);
  assert.deepEqual(parts.flatMap((p) => JSON.parse(p)), items);
});

Deno.test("jsonParts(): an item larger than a part travels alone; no items is one empty part", () => {
  const big = { data: "y".repeat(10_000) };
  const parts = jsonParts([{ a: 1 }, big, { b: 2 }], 1_000);
  assert.deepEqual(parts.map((p) => JSON.parse(p)), [[{ a: 1 }], [big], [{ b: 2 }]]);
  assert.deepEqual(jsonParts([]), ["[]"]);
});
