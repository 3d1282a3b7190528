import assert from "node:assert/strict";
import type { KubeObject } from "../src/shared/kube_object.ts";
import { ObjectCache } from "../workers/store.ts";

const node = (name: string, rv: string, providerID?: string, uid = `uid-${name}`): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, resourceVersion: rv, uid },
  spec: providerID ? { providerID } : {},
});
const providerIndex = {
  field: "spec.providerID",
  values: (o: KubeObject) => {
    const id = (o.spec as { providerID?: string } | undefined)?.providerID;
    return id ? [id] : [];
  },
};

Deno.test("replace() reports only differences: adds, updates and deletes", () => {
  const cache = new ObjectCache();
  assert.deepEqual(cache.replace([node("a", "1"), node("b", "2")]).map((d) => d.type), [
    "add",
    "add",
  ]);
  const deltas = cache.replace([node("a", "1"), node("b", "3"), node("c", "4")]);
  assert.deepEqual(deltas.map((d) => `${d.type} ${d.object.metadata!.name}`), [
    "update b",
    "add c",
  ]);
  assert.deepEqual(
    cache.replace([node("c", "4")]).map((d) => `${d.type} ${d.object.metadata!.name}`),
    [
      "delete a",
      "delete b",
    ],
  );
  assert.equal(cache.size, 1);
});

Deno.test("upsert() with the same resourceVersion is not a change; a new UID is a delete and an add", () => {
  const cache = new ObjectCache();
  cache.upsert(node("a", "1"));
  assert.deepEqual(cache.upsert(node("a", "1")), []);
  const recreated = cache.upsert(node("a", "9", undefined, "other-uid"));
  assert.deepEqual(recreated.map((d) => d.type), ["delete", "add"]);
});

Deno.test("indexes follow updates and deletes", () => {
  const cache = new ObjectCache([providerIndex]);
  cache.upsert(node("a", "1", "aws://a"));
  cache.upsert(node("b", "2", "aws://b"));
  assert.deepEqual(cache.byIndex("spec.providerID", "aws://a").map((o) => o.metadata!.name), ["a"]);
  cache.upsert(node("a", "3", "aws://z"));
  assert.deepEqual(cache.byIndex("spec.providerID", "aws://a"), []);
  assert.deepEqual(cache.byIndex("spec.providerID", "aws://z").map((o) => o.metadata!.name), ["a"]);
  cache.remove("a");
  assert.deepEqual(cache.byIndex("spec.providerID", "aws://z"), []);
  assert.ok(cache.hasIndex("metadata.namespace"));
});

Deno.test("a throwing index extractor leaves the object unindexed but stored", () => {
  const errors: string[] = [];
  const cache = new ObjectCache([{
    field: "x",
    values: () => {
      throw new Error("bad");
    },
  }], (f) => errors.push(f));
  assert.equal(cache.upsert(node("a", "1")).length, 1);
  assert.equal(cache.size, 1);
  assert.deepEqual(errors, ["x"]);
});
