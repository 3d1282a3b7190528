import assert from "node:assert/strict";
import { compareResourceVersions, olderThan } from "../src/shared/resource_version.ts";

Deno.test("compareResourceVersions() orders decimal integers by length then digits", () => {
  assert.ok(compareResourceVersions("99", "100")! < 0);
  assert.ok(compareResourceVersions("100", "99")! > 0);
  assert.equal(compareResourceVersions("42", "42"), 0);
  assert.equal(compareResourceVersions("007", "7"), 0);
});

Deno.test("compareResourceVersions() does not compare opaque versions; olderThan() fails open", () => {
  // An aggregated API server may use any string: "b" > "a9" as strings, which means nothing.
  for (const [a, b] of [["b", "a9"], ["10", "9a"], ["", "1"], ["1.5", "2"]]) {
    assert.equal(compareResourceVersions(a!, b!), undefined, `${a} vs ${b}`);
    assert.equal(olderThan(a!, b!), false);
    assert.equal(olderThan(b!, a!), false);
  }
  assert.equal(olderThan("99", "100"), true);
  assert.equal(olderThan("100", "99"), false);
});
