import assert from "node:assert/strict";
import { infrastructureReady, passesWatchFilter } from "../src/main/management/cluster_object.ts";

Deno.test("infrastructureReady() reads v1beta2 status.initialization.infrastructureProvisioned", () => {
  const v2 = (value: unknown) => ({
    apiVersion: "cluster.x-k8s.io/v1beta2",
    kind: "Cluster",
    status: { initialization: { infrastructureProvisioned: value } },
  });
  assert.equal(infrastructureReady(v2(true)), true);
  assert.equal(infrastructureReady(v2(false)), false);
  assert.equal(infrastructureReady(v2(undefined)), false, "nil counts as not ready");
  assert.equal(
    infrastructureReady({ apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster" }),
    false,
  );
});

Deno.test("infrastructureReady() reads v1beta1 status.infrastructureReady", () => {
  const v1 = (value: unknown) => ({
    apiVersion: "cluster.x-k8s.io/v1beta1",
    kind: "Cluster",
    status: { infrastructureReady: value },
  });
  assert.equal(infrastructureReady(v1(true)), true);
  assert.equal(infrastructureReady(v1(false)), false);
  assert.equal(
    infrastructureReady({ apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster", status: {} }),
    false,
  );
});

Deno.test("passesWatchFilter() lets everything through for an empty value, else needs the label", () => {
  const labelled = { metadata: { labels: { "cluster.x-k8s.io/watch-filter": "team-a" } } };
  assert.ok(passesWatchFilter({}, ""));
  assert.ok(passesWatchFilter(labelled, "team-a"));
  assert.ok(!passesWatchFilter(labelled, "team-b"));
  assert.ok(!passesWatchFilter({}, "team-a"));
});
