/**
 * Handing one watch from a session to another (`reconcile/session_move.ts`) against sessions that
 * answer as a test says: exact when both answer, afresh on the new session when the handover fails.
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
  const rewatched: Session[] = [];
  const watch: MovingWatch = {
    watchId: 7,
    kind: { apiVersion: "v1", kind: "ConfigMap" },
    filters: {},
    session: from,
    outstanding,
    subscribed: true,
    start: () => assert.fail("a subscribed watch is handed over, not started"),
    rewatch: (session) => {
      rewatched.push(session);
      return Promise.resolve();
    },
  };
  return { watch, rewatched };
}

const TIMEOUTS = { syncMs: 1_000, callMs: 1_000 };
const gone = () => {
  throw new ClusterCacheError("NoKindMatch", "the kind is no longer served");
};

Deno.test("handOver: exact when both sessions answer; the new one gets the rest of the window", async () => {
  const from = session({ unwatch: () => ({ seen: [], objects: [] }) });
  const to = session({ watch: () => [] });
  const { watch, rewatched } = movingWatch(from, 24);
  assert.equal(await handOver(watch, to, TIMEOUTS), true);
  assert.equal(watch.session, to);
  assert.deepEqual(to.calls.map((c) => c.op), ["watch", "resume"]);
  assert.equal(to.calls[1]!.window, WATCH_WINDOW - 24);
  assert.deepEqual(rewatched, []);
});

Deno.test("handOver: a failed handover starts the watch afresh on the new session, cleaned first", async () => {
  const from = session({ unwatch: () => ({ seen: [], objects: [] }) });
  const to = session({ watch: gone });
  const { watch, rewatched } = movingWatch(from, 0);
  assert.equal(await handOver(watch, to, TIMEOUTS), false);
  assert.equal(watch.session, to);
  assert.deepEqual(
    to.calls.map((c) => c.op),
    ["watch", "unwatch"],
    "its half-made handover undone",
  );
  assert.deepEqual(rewatched, [to]);
});
