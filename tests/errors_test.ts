import assert from "node:assert/strict";
import {
  ClusterCacheError,
  ClusterNotConnectedError,
  describeError,
  fromWireError,
  isConflict,
  isNotFound,
  KubernetesApiError,
  toWireError,
} from "../src/shared/errors.ts";

const status = (code: number, reason: string) => ({
  kind: "Status" as const,
  apiVersion: "v1" as const,
  metadata: {},
  status: "Failure" as const,
  message: `${reason} happened`,
  reason,
  code,
});

Deno.test("ClusterNotConnectedError has Cluster API's message with the operation as prefix", () => {
  const error = new ClusterNotConnectedError("error getting client", {
    namespace: "ns",
    name: "c",
  });
  assert.equal(error.message, "error getting client: connection to the workload cluster is down");
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ClusterNotConnectedError");
});

Deno.test("errors keep their class and fields across the wire (structured clone)", () => {
  const cases: Error[] = [
    new ClusterNotConnectedError("error getting client", { namespace: "ns", name: "c" }),
    new KubernetesApiError(status(409, "Conflict"), 3),
    new ClusterCacheError("Unreachable", "cluster is not reachable: refused"),
    new DOMException("stop", "AbortError"),
    new TypeError("bad kind"),
    new RangeError("out of range"),
  ];
  for (const original of cases) {
    const back = fromWireError(structuredClone(toWireError(original)));
    assert.equal(back.constructor, original.constructor);
    assert.equal(back.message, original.message);
    assert.equal(back.name, original.name);
  }
  // One timeout type reaches callers.
  const timeout = fromWireError(
    structuredClone(toWireError(new DOMException("late", "TimeoutError"))),
  );
  assert.ok(timeout instanceof ClusterCacheError && timeout.code === "Timeout");
  assert.equal(timeout.message, "late");
  const api = fromWireError(
    structuredClone(toWireError(new KubernetesApiError(status(409, "Conflict"), 3))),
  );
  assert.ok(isConflict(api));
  assert.equal((api as KubernetesApiError).retryAfterSeconds, 3);
  const cnc = fromWireError(
    structuredClone(toWireError(new ClusterNotConnectedError("op", { namespace: "a", name: "b" }))),
  );
  assert.deepEqual((cnc as ClusterNotConnectedError).cluster, { namespace: "a", name: "b" });
  assert.equal(
    (fromWireError(toWireError(new ClusterCacheError("Timeout", "x"))) as ClusterCacheError).code,
    "Timeout",
  );
});

Deno.test("isNotFound() and isConflict() classify API errors only", () => {
  assert.ok(isNotFound(new KubernetesApiError(status(404, "NotFound"))));
  assert.ok(!isNotFound(new Error("404")));
  assert.ok(!isConflict(new KubernetesApiError(status(409, "AlreadyExists"))));
});

Deno.test("describeError() never throws, whatever it is given", () => {
  const noMessage = new Error("x");
  Object.defineProperty(noMessage, "message", {
    get() {
      throw new Error("no");
    },
  });
  const hostile = new Proxy({}, {
    get() {
      throw new Error("no");
    },
  });
  assert.equal(describeError(new RangeError("r")), "RangeError: r");
  assert.equal(describeError("plain"), "plain");
  assert.equal(describeError(undefined), "undefined");
  assert.equal(describeError(Object.create(null)), "[object Object]");
  assert.equal(describeError(noMessage), "[object Error]");
  assert.equal(describeError(hostile), "an unprintable value");
});
