import assert from "node:assert/strict";
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  type JsonValue,
  PatchError,
} from "../testing/sim/json_patch.ts";

Deno.test("applyJsonPatch() runs RFC 6902 operations in order without touching the input", () => {
  const doc: JsonValue = { a: { b: [1, 2] }, c: "x" };
  const out = applyJsonPatch(doc, [
    { op: "add", path: "/a/b/1", value: 9 },
    { op: "add", path: "/a/b/-", value: 3 },
    { op: "replace", path: "/c", value: "y" },
    { op: "copy", from: "/c", path: "/d" },
    { op: "move", from: "/d", path: "/e" },
    { op: "remove", path: "/a/b/0" },
    { op: "test", path: "/e", value: "y" },
    { op: "add", path: "/k~1l", value: true },
  ]);
  assert.deepEqual(out, { a: { b: [9, 2, 3] }, c: "y", e: "y", "k/l": true });
  assert.deepEqual(doc, { a: { b: [1, 2] }, c: "x" });
});

Deno.test("applyJsonPatch() fails on a missing path, a failed test and bad input", () => {
  assert.throws(() => applyJsonPatch({}, [{ op: "remove", path: "/x" }]), PatchError);
  assert.throws(
    () => applyJsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 2 }]),
    /Test operation failed/,
  );
  assert.throws(
    () => applyJsonPatch({ a: [] }, [{ op: "add", path: "/a/5", value: 1 }]),
    /out of bounds/,
  );
  assert.throws(() => applyJsonPatch({}, { op: "add" }), /must be an array/);
  assert.throws(
    () => applyJsonPatch({ a: {} }, [{ op: "move", from: "/a", path: "/a/b" }]),
    /own child/,
  );
  assert.throws(
    () => applyJsonPatch({}, [{ op: "frob", path: "/a" }]),
    /Unknown JSON patch operation/,
  );
});

Deno.test("applyMergePatch() merges objects, deletes nulls and replaces arrays", () => {
  assert.deepEqual(
    applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { d: 4 }, l: [3] }),
    { b: { c: 2, d: 4 }, l: [3] },
  );
  assert.deepEqual(applyMergePatch({ a: 1 }, [1]), [1]);
});

Deno.test("applyStrategicMergePatch() merges named lists and drops directives", () => {
  const pod: JsonValue = {
    spec: { containers: [{ name: "a", image: "a:1" }, { name: "b", image: "b:1" }] },
  };
  const out = applyStrategicMergePatch(pod, {
    $setElementOrder: { x: 1 },
    spec: {
      containers: [{ name: "b", image: "b:2" }, { name: "c", image: "c:1" }, {
        name: "a",
        $patch: "delete",
      }],
    },
  });
  assert.deepEqual(out, {
    spec: { containers: [{ name: "b", image: "b:2" }, { name: "c", image: "c:1" }] },
  });
});
