/**
 * Handing one watch from a session to another (`reconcile/session_move.ts`) against sessions that
 * answer as a test says: exact when both answer, afresh when the handover fails, and ended (its name
 * free again) when the new session cannot take it at all.
 */
import assert from "node:assert/strict";
import { ClusterCacheError } from "../mod.ts";
import { handOver } from "../src/main/reconcile/session_move.ts";
import type { Session } from "../src/main/sessions/session.ts";
import { WATCH_WINDOW } from "../src/main/watches/watch_dispatch.ts";
import type { MovingWatch } from "../src/main/watches/watch_registry.ts";

type Request = { op: string; handover?: unknown; window?: number };

/** A session answering each operation with `answers[op]` (a function of the request, or a value). */
function session(answers: Record<string, (r: Request) => unknown>): Session & { calls: Request[] } {
  const calls: Request[] = [];
  return {
    calls,
    call: (request: Request) => {
      calls.push(request);
      try {
        return Promise.resolve(answers[request.op]?.(request) ?? null);
      } catch (error) {
        return Promise.reject(error);
      }
    },
  } as unknown as Session & { calls: Request[] };
}

function movingWatch(from: Session, outstanding: number) {
  const failures: Error[] = [];
  const watch: MovingWatch = {
    watchId: 7,
    kind: { apiVersion: "v1", kind: "ConfigMap" },
    filters: {},
    session: from,
    outstanding,
    subscribed: true,
    start: () => assert.fail("a subscribed watch is handed over, not started"),
    fail: (error) => void failures.push(error),
  };
  return { watch, failures };
}

const TIMEOUTS = { syncMs: 1_000, callMs: 1_000 };
const gone = () => {
  throw new ClusterCacheError("NoKindMatch", "the kind is no longer served");
};

Deno.test("handOver: exact when both sessions answer; the new one gets the rest of the window", async () => {
  const from = session({ unwatch: () => ({ seen: [], objects: [] }) });
  const to = session({ watch: () => [] });
  const { watch, failures } = movingWatch(from, 24);
  assert.equal(await handOver(watch, to, TIMEOUTS), true);
  assert.equal(watch.session, to);
  assert.deepEqual(to.calls.map((c) => c.op), ["watch", "resume"]);
  assert.equal(to.calls[1]!.window, WATCH_WINDOW - 24);
  assert.deepEqual(failures, []);
});

Deno.test("handOver: a failed handover starts the watch afresh on the new session", async () => {
  const from = session({ unwatch: () => ({ seen: [], objects: [] }) });
  const to = session({ watch: (r) => r.handover ? gone() : null });
  const { watch, failures } = movingWatch(from, 0);
  assert.equal(await handOver(watch, to, TIMEOUTS), false);
  assert.equal(watch.session, to);
  assert.deepEqual(to.calls.map((c) => c.op), ["watch", "unwatch", "watch"]);
  assert.deepEqual(failures, []);
});

Deno.test("handOver: a watch the new session cannot take at all ends, never stays registered and silent", async () => {
  const from = session({ unwatch: () => ({ seen: [], objects: [] }) });
  const to = session({ watch: gone });
  const { watch, failures } = movingWatch(from, 0);
  assert.equal(await handOver(watch, to, TIMEOUTS), false);
  assert.equal(failures.length, 1, "the watch was ended");
  assert.ok(failures[0] instanceof ClusterCacheError && failures[0].code === "NoKindMatch");
});
