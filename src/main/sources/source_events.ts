/**
 * Why a cluster source gets an event after a reconcile (Cluster API's `shouldSendEvent`), and Go's
 * rendering of durations used in those reasons.
 *
 * @module
 */

/**
 * Formats milliseconds like Go's `time.Duration.String()`: `21s`, `5m0s`, `1h0m0s`, `1.5s`, `500ms`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { goDuration } from "./source_events.ts";
 * assert.ok(goDuration(300_000) === "5m0s" && goDuration(21_000) === "21s");
 * ```
 */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  const abs = Math.abs(ms);
  if (abs < 1) return `${sign}${trim((abs * 1000).toFixed(3))}µs`;
  if (abs < 1000) return `${sign}${trim(abs.toFixed(6))}ms`;
  const hours = Math.floor(abs / 3_600_000);
  const minutes = Math.floor((abs % 3_600_000) / 60_000);
  const seconds = trim(((abs % 60_000) / 1000).toFixed(9));
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

function trim(fixed: string): string {
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}

/** The reason text for a probe-failure duration. */
export function probeFailureReason(durationMs: number): string {
  return `health probe didn't succeed since more than ${goDuration(durationMs)}`;
}

/** The reason text for a kind whose informer has failed for longer than a duration. */
export function kindFailureReason(kind: string, durationMs: number): string {
  return `watch of ${kind} failing since more than ${goDuration(durationMs)}`;
}

/** A change of connection a reconcile made. */
export type Transition = "connect" | "disconnect";

/** What a reconcile observed, for deciding source events. */
export interface ReconcileOutcome {
  now: number;
  /** When this source last got an event for this cluster (0: never). */
  lastEventSent: number;
  /** When the probe last succeeded (0: never). */
  lastProbeSuccess: number;
  /** Connects and disconnects of this reconcile, in the order they happened. */
  transitions: readonly Transition[];
  /** Kinds whose informers fail, and since when. */
  failingKinds?: readonly { kind: string; since: number }[];
}

/**
 * The reasons to send a source an event, in order: the connects and disconnects in the order they
 * happened (a kubeconfig rotation is `"disconnect"` then `"connect"`), then one per duration `d`
 * with `lastEventSent < lastProbeSuccess + d < now` (both strict), then one per failing kind and
 * duration `d` of `kindDurations` with `lastEventSent < failingSince + d < now` (so once per
 * duration, as the probe's). Empty: no event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shouldSendEvent } from "./source_events.ts";
 * const now = 1_000_000;
 * const reasons = shouldSendEvent(
 *   { now, lastEventSent: now - 40_000, lastProbeSuccess: now - 60_000, transitions: [] },
 *   [21_000],
 * );
 * assert.ok(reasons[0] === "health probe didn't succeed since more than 21s");
 * ```
 */
export function shouldSendEvent(
  outcome: ReconcileOutcome,
  durations: readonly number[],
  kindDurations: readonly number[] = [],
): string[] {
  const reasons: string[] = [...outcome.transitions];
  const crossed = (since: number, d: number) =>
    outcome.lastEventSent < since + d && since + d < outcome.now;
  for (const d of durations) {
    if (crossed(outcome.lastProbeSuccess, d)) reasons.push(probeFailureReason(d));
  }
  for (const { kind, since } of outcome.failingKinds ?? []) {
    for (const d of kindDurations) if (crossed(since, d)) reasons.push(kindFailureReason(kind, d));
  }
  return reasons;
}
