import assert from "node:assert/strict";
import { matchesFields, parseFieldSelector, readFieldPath } from "../src/shared/field_selector.ts";
import { SelectorParseError } from "../src/shared/label_selector.ts";

Deno.test("parseFieldSelector() reads =, == and != terms", () => {
  const s = parseFieldSelector("metadata.name=a,spec.nodeName==n1,status.phase!=Running");
  assert.deepEqual(s.requirements, [
    { field: "metadata.name", operator: "=", value: "a" },
    { field: "spec.nodeName", operator: "=", value: "n1" },
    { field: "status.phase", operator: "!=", value: "Running" },
  ]);
});

Deno.test("parseFieldSelector() honours backslash escapes", () => {
  const s = parseFieldSelector("metadata.name=a\\,b,metadata.namespace=x\\=y");
  assert.deepEqual(s.requirements.map((r) => r.value), ["a,b", "x=y"]);
});

Deno.test("parseFieldSelector() rejects a term without operator", () => {
  assert.throws(() => parseFieldSelector("metadata.name"), SelectorParseError);
  assert.throws(() => parseFieldSelector("=x"), SelectorParseError);
});

Deno.test("matchesFields() compares string values; missing fields read as empty", () => {
  const pod = { metadata: { name: "p" }, spec: { nodeName: "n1", replicas: 3, paused: false } };
  const get = (f: string) => readFieldPath(pod, f);
  assert.ok(matchesFields(parseFieldSelector("spec.nodeName=n1,metadata.name=p"), get));
  assert.ok(!matchesFields(parseFieldSelector("spec.nodeName!=n1"), get));
  assert.ok(matchesFields(parseFieldSelector("status.phase="), get));
  assert.equal(readFieldPath(pod, "spec.replicas"), "3");
  assert.equal(readFieldPath(pod, "spec.paused"), "false");
  assert.equal(readFieldPath(pod, "spec"), "");
});
