import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { type ClusterCacheOptions, resolveOptions as resolveWith } from "../src/main/options.ts";
import { workerOptionsFlag } from "../src/main/sessions/worker_options_flag.ts";

// As ClusterCache.setup() resolves them: with what this runtime's Worker options allow.
const resolveOptions = (options: ClusterCacheOptions) => resolveWith(options, workerOptionsFlag);

const management = new KubeConfig();
const base: ClusterCacheOptions = {
  management,
  client: { userAgent: "test" },
  podIdentity: null,
  inClusterConfig: null,
};

Deno.test("resolveOptions() applies Cluster API's defaults", () => {
  const o = resolveOptions(base);
  assert.deepEqual(o.client, {
    userAgent: "test",
    timeoutMs: 10_000,
    qps: 20,
    burst: 30,
    disableFor: [],
  });
  assert.deepEqual(o.healthProbe, {
    intervalMs: 10_000,
    timeoutMs: 5_000,
    failureThreshold: 5,
    successThreshold: 1,
  });
  assert.equal(o.connectionCreationRetryIntervalMs, 30_000);
  assert.equal(o.initialSyncTimeoutMs, 300_000);
  assert.equal(o.watchRequestTimeoutMs, 660_000);
  assert.equal(o.defaultRequeueAfterMs, 10_000);
  assert.equal(o.watchFilterValue, "");
  assert.equal(o.workerPermissions, "least");
});

Deno.test("resolveOptions() defaults timeout, qps and burst when they are exactly 0", () => {
  const o = resolveOptions({ ...base, client: { userAgent: "t", timeoutMs: 0, qps: 0, burst: 0 } });
  assert.deepEqual([o.client.timeoutMs, o.client.qps, o.client.burst], [10_000, 20, 30]);
  const set = resolveOptions({
    ...base,
    client: { userAgent: "t", timeoutMs: 1, qps: 2, burst: 3 },
  });
  assert.deepEqual([set.client.timeoutMs, set.client.qps, set.client.burst], [1, 2, 3]);
});

Deno.test("resolveOptions() requires the user agent and the management KubeConfig", () => {
  assert.throws(() => resolveOptions({ ...base, client: { userAgent: "" } }), {
    name: "TypeError",
    message: "options.client.userAgent must be set",
  });
  assert.throws(
    () => resolveOptions({ ...base, management: undefined as unknown as KubeConfig }),
    /options.management must be set/,
  );
});

Deno.test("resolveOptions() rejects out-of-range values with RangeError naming the option", () => {
  assert.throws(() => resolveOptions({ ...base, healthProbe: { intervalMs: -1 } }), {
    name: "RangeError",
    message: "options.healthProbe.intervalMs must be a positive number, got -1",
  });
  assert.throws(
    () => resolveOptions({ ...base, healthProbe: { failureThreshold: 0 } }),
    RangeError,
  );
  assert.throws(() => resolveOptions({ ...base, client: { userAgent: "t", qps: -5 } }), RangeError);
  assert.throws(
    () => resolveOptions({ ...base, connectionCreationRetryIntervalMs: Number.NaN }),
    RangeError,
  );
  assert.throws(() => resolveOptions({ ...base, workerPermissions: "all" as "least" }), RangeError);
});

Deno.test("resolveOptions() takes the pod identity from POD_NAMESPACE, POD_NAME and POD_UID only when all are set", () => {
  assert.equal(resolveOptions(base).podIdentity, undefined);
  const pod = { namespace: "ns", name: "p", uid: "u" };
  assert.deepEqual(resolveOptions({ ...base, podIdentity: pod }).podIdentity, pod);
});
