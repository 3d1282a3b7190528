/**
 * The watch registry against a session that answers as a test says: `synced` follows the session's
 * `watchSynced` and the handler's pace, not the call's answer; a moved watch hears only its current
 * session; a watch a move could not start on its new session is tried again.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { ClusterCacheError, ClusterNotConnectedError, type WatchEvent } from "../mod.ts";
import type { Session } from "../src/main/sessions/session.ts";
import { WatchRegistry } from "../src/main/watches/watch_registry.ts";
import { eventually } from "./helpers/fixture.ts";

function session() {
  const answers: PromiseWithResolvers<unknown>[] = [];
  const fake = {
    alive: true,
    answers,
    call: () => {
      const answer = Promise.withResolvers<unknown>();
      answers.push(answer);
      return answer.promise;
    },
    ack: () => {},
  };
  return fake as unknown as Session & { answers: PromiseWithResolvers<unknown>[] };
}

const CLUSTER = { namespace: "default", name: "w1" };
const add = (name: string): WatchEvent => ({
  type: "add",
  object: { metadata: { name, namespace: "default", resourceVersion: "1" } },
});

function registry() {
  return new WatchRegistry({ syncMs: 1_000, callMs: 1_000 }, getLogger(["tests"]));
}

/** Whether a promise settled within a few macrotasks, and how. */
async function state(promise: Promise<unknown>): Promise<"pending" | "resolved" | "rejected"> {
  let result: "pending" | "resolved" | "rejected" = "pending";
  promise.then(() => result = "resolved", () => result = "rejected");
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
  return result;
}

Deno.test("registry: synced waits for the session's watchSynced and the handler to finish what came before it", async () => {
  const watches = registry();
  const s = session();
  const gate = Promise.withResolvers<void>();
  const told: string[] = [];
  const handle = watches.add(CLUSTER, "default/w1", { id: 1, session: s }, {
    name: "w",
    kind: { apiVersion: "v1", kind: "ConfigMap" },
    handler: async (e) => {
      told.push(e.object.metadata!.name!);
      if (e.object.metadata!.name === "b") await gate.promise;
    },
  });
  const [registration] = watches.servedBy(s);
  watches.deliver(registration!.watchId, [add("a"), add("b")], s);
  s.answers[0]!.resolve(null); // the worker answers: subscribed, not synced
  assert.equal(await state(handle.synced), "pending");
  assert.ok(registration!.subscribed);
  watches.sentAll(registration!.watchId, session()); // another session's word: not heard
  watches.sentAll(registration!.watchId, s);
  watches.deliver(registration!.watchId, [add("c")], s); // after the mark: not waited for
  assert.equal(await state(handle.synced), "pending", "the handler is still on b");
  gate.resolve();
  assert.equal(await state(handle.synced), "resolved");
  assert.deepEqual(told, ["a", "b", "c"]);
  handle.stop();
});

Deno.test("registry: a watch a new session cannot start yet is tried again with backoff, until it starts or stops", async () => {
  const watches = registry();
  const s = session();
  const handle = watches.add(CLUSTER, "default/w1", { id: 1, session: s }, {
    name: "w",
    kind: { apiVersion: "v1", kind: "ConfigMap" },
    handler: () => {},
  });
  const [registration] = watches.servedBy(s);
  s.answers[0]!.resolve(null);
  const next = session();
  registration!.session = next; // a move's failed handover
  const first = registration!.rewatch(next);
  next.answers[0]!.reject(new ClusterCacheError("CacheSyncTimeout", "not yet"));
  await first;
  assert.equal(registration!.subscribed, false, "a second move must start it, not hand it over");
  assert.equal(next.answers.length, 2, "its half-made subscription undone");
  next.answers[1]!.resolve(null);
  await eventually(() => next.answers.length === 3, "a second attempt after a backoff", 5_000);
  next.answers[2]!.resolve(null); // started
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(registration!.subscribed, true);
  assert.equal(next.answers.length, 3, "no more attempts once started");
  assert.deepEqual(watches.names(1), ["w"], "still registered: a watch lives with its connection");

  // One that never starts stops trying once stopped (no timer left behind).
  const other = session();
  registration!.session = other;
  const again = registration!.rewatch(other);
  other.answers[0]!.reject(new ClusterCacheError("NoKindMatch", "gone"));
  await again;
  handle.stop();
  other.answers[1]?.resolve(null);
  await handle.done;
});

Deno.test("registry: a watch whose connection goes before it synced fails with ClusterNotConnectedError; a closed cache with Closed", async () => {
  const watches = registry();
  const s = session();
  const input = { kind: { apiVersion: "v1", kind: "ConfigMap" }, handler: () => {} };
  const first = watches.add(CLUSTER, "default/w1", { id: 1, session: s }, { ...input, name: "a" });
  const second = watches.add(CLUSTER, "default/w1", { id: 2, session: s }, { ...input, name: "b" });
  watches.forget(1);
  await assert.rejects(first.synced, ClusterNotConnectedError);
  watches.close();
  await assert.rejects(second.synced, (e) => e instanceof ClusterCacheError && e.code === "Closed");
});
