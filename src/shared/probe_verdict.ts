/**
 * What a health probe's outcome says about the cluster (both sides: the worker judges its own
 * timers, the main thread its event loop). A probe that timed out only because this process was
 * starved of CPU says nothing about the cluster: counting it as a failure would disconnect healthy
 * clusters on an overloaded machine, and reconnecting them would add to the load until nothing is
 * connected (seen at 1,000 clusters on a busy 2-core machine).
 *
 * @module
 */

/**
 * Whether running `lateMs` behind schedule means this process was starved: later than half the
 * probe timeout, and than 250 ms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { starved } from "./probe_verdict.ts";
 * assert.ok(!starved(100, 5_000) && starved(3_000, 5_000));
 * ```
 */
export function starved(lateMs: number, timeoutMs: number): boolean {
  return lateMs > Math.max(250, timeoutMs / 2);
}

/** How a probe ended. */
export interface ProbeOutcome {
  ok: boolean;
  /** The API server answered 401. */
  unauthorized: boolean;
  /** The worker reported that its own timer ran late (`Overloaded`). */
  workerStarved: boolean;
  /** The worker did not answer by the call's deadline. */
  unanswered: boolean;
  /** The main thread's worst event-loop lag while the probe was out. */
  mainLagMs: number;
  timeoutMs: number;
}

/** A probe's verdict: it moves the failure count only when it is `"failure"` or `"unauthorized"`. */
export type ProbeVerdict = "success" | "failure" | "unauthorized" | "inconclusive";

/**
 * Judges a probe.
 *
 * @example An unanswered probe while the main thread was blocked for 3 s
 * ```ts
 * import assert from "node:assert/strict";
 * import { probeVerdict } from "./probe_verdict.ts";
 * const outcome = { ok: false, unauthorized: false, workerStarved: false, timeoutMs: 5_000 };
 * assert.equal(probeVerdict({ ...outcome, unanswered: true, mainLagMs: 3_000 }), "inconclusive");
 * assert.equal(probeVerdict({ ...outcome, unanswered: true, mainLagMs: 20 }), "failure");
 * ```
 */
export function probeVerdict(outcome: ProbeOutcome): ProbeVerdict {
  if (outcome.ok) return "success";
  if (outcome.unauthorized) return "unauthorized";
  if (outcome.workerStarved) return "inconclusive";
  if (outcome.unanswered && starved(outcome.mainLagMs, outcome.timeoutMs)) return "inconclusive";
  return "failure";
}
