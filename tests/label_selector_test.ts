import assert from "node:assert/strict";
import {
  formatLabelSelector,
  matchesLabels,
  parseLabelSelector,
  SelectorParseError,
} from "../src/shared/label_selector.ts";

Deno.test("parseLabelSelector() reads every operator", () => {
  const s = parseLabelSelector("a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g,h>4,i<5");
  assert.deepEqual(s.requirements.map((r) => [r.key, r.operator, r.values]), [
    ["a", "=", ["1"]],
    ["b", "=", ["2"]],
    ["c", "!=", ["3"]],
    ["d", "in", ["x", "y"]],
    ["e", "notin", ["z"]],
    ["f", "exists", []],
    ["g", "!", []],
    ["h", "gt", ["4"]],
    ["i", "lt", ["5"]],
  ]);
});

Deno.test("parseLabelSelector() of an empty string matches everything", () => {
  assert.equal(parseLabelSelector("  ").requirements.length, 0);
  assert.ok(matchesLabels(parseLabelSelector(""), undefined));
});

Deno.test("matchesLabels() treats a missing key as not equal and not in", () => {
  const labels = { app: "web" };
  assert.ok(matchesLabels(parseLabelSelector("tier!=db"), labels));
  assert.ok(matchesLabels(parseLabelSelector("tier notin (db)"), labels));
  assert.ok(!matchesLabels(parseLabelSelector("tier in (db)"), labels));
  assert.ok(!matchesLabels(parseLabelSelector("tier"), labels));
  assert.ok(matchesLabels(parseLabelSelector("!tier"), labels));
  assert.ok(matchesLabels(parseLabelSelector("app=web,app in (web,api)"), labels));
  assert.ok(!matchesLabels(parseLabelSelector("app=web,!app"), labels));
});

Deno.test("matchesLabels() compares gt and lt numerically", () => {
  assert.ok(matchesLabels(parseLabelSelector("n>9"), { n: "10" }));
  assert.ok(!matchesLabels(parseLabelSelector("n<9"), { n: "10" }));
  assert.ok(!matchesLabels(parseLabelSelector("n>1"), { n: "x" }));
});

Deno.test("parseLabelSelector() rejects malformed input with the offending part", () => {
  for (
    const bad of ["a=(", "a in b", "a in (x", "-a=1", "a=b c", "a=" + "x".repeat(64), "a>b", "a,,b"]
  ) {
    assert.throws(() => parseLabelSelector(bad), SelectorParseError, bad);
  }
  assert.throws(() => parseLabelSelector("a in b"), /Cannot parse label selector "a in b"/);
});

Deno.test("parseLabelSelector() accepts prefixed keys and rejects bad prefixes", () => {
  assert.ok(matchesLabels(parseLabelSelector("cluster.x-k8s.io/watch-filter=x"), {
    "cluster.x-k8s.io/watch-filter": "x",
  }));
  assert.throws(() => parseLabelSelector("Bad_Prefix/x=1"), SelectorParseError);
});

Deno.test("formatLabelSelector() round-trips", () => {
  const text = "a=1,b!=2,c in (x,y),d notin (z),e,!f,g>1,h<2";
  assert.equal(formatLabelSelector(parseLabelSelector(text)), text);
});
