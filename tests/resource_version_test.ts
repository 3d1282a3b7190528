import assert from "node:assert/strict";
import { compareResourceVersions } from "../src/shared/resource_version.ts";
import { listSemantics, watchStart } from "../testing/sim/list_semantics.ts";

Deno.test("compareResourceVersions() orders decimal integers by length then digits", () => {
  assert.ok(compareResourceVersions("99", "100") < 0);
  assert.ok(compareResourceVersions("100", "99") > 0);
  assert.equal(compareResourceVersions("42", "42"), 0);
  assert.equal(compareResourceVersions("007", "7"), 0);
});

Deno.test("listSemantics() follows the api-concepts table", () => {
  assert.deepEqual(listSemantics({}), { kind: "MostRecent" });
  assert.deepEqual(listSemantics({ resourceVersion: "0" }), { kind: "Any" });
  assert.deepEqual(listSemantics({ resourceVersion: "5" }), {
    kind: "NotOlderThan",
    resourceVersion: "5",
  });
  assert.deepEqual(listSemantics({ limit: 10 }), { kind: "MostRecent" });
  assert.deepEqual(listSemantics({ resourceVersion: "0", limit: 10 }), { kind: "Any" });
  assert.deepEqual(listSemantics({ resourceVersion: "5", limit: 10 }), {
    kind: "Exact",
    resourceVersion: "5",
  });
  assert.deepEqual(listSemantics({ continue: "t" }), { kind: "Continuation", token: "t" });
  assert.deepEqual(listSemantics({ continue: "t", resourceVersion: "0" }), {
    kind: "Continuation",
    token: "t",
  });
  assert.ok("invalid" in listSemantics({ continue: "t", resourceVersion: "5" }));
});

Deno.test("listSemantics() checks resourceVersionMatch", () => {
  assert.deepEqual(listSemantics({ resourceVersion: "5", resourceVersionMatch: "Exact" }), {
    kind: "Exact",
    resourceVersion: "5",
  });
  assert.ok("invalid" in listSemantics({ resourceVersion: "0", resourceVersionMatch: "Exact" }));
  assert.ok("invalid" in listSemantics({ resourceVersionMatch: "NotOlderThan" }));
  assert.deepEqual(listSemantics({ resourceVersion: "0", resourceVersionMatch: "NotOlderThan" }), {
    kind: "Any",
  });
  assert.ok("invalid" in listSemantics({ resourceVersion: "5", resourceVersionMatch: "Newest" }));
});

Deno.test("watchStart() starts from the initial state for unset and 0", () => {
  assert.deepEqual(watchStart(undefined), { kind: "InitialState" });
  assert.deepEqual(watchStart("0"), { kind: "InitialState" });
  assert.deepEqual(watchStart("12"), { kind: "From", resourceVersion: "12" });
});
