/**
 * Requeue arithmetic of the reconciler, exactly as Cluster API's `shouldRequeue` and
 * `minDurationOrDefault`.
 *
 * @module
 */

/**
 * Whether to wait before acting again, given when the thing last happened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shouldRequeue } from "./requeue.ts";
 * assert.ok(shouldRequeue(25_000, 20_000, 20_000).requeue === true);   // 15 s left
 * assert.ok(shouldRequeue(40_000, 20_000, 20_000).requeue === false);  // interval over
 * ```
 *
 * @param now Current time (ms).
 * @param last When it last happened (ms); `undefined` or 0 means never.
 * @param interval The interval (ms).
 * @returns `{ afterMs: interval - elapsed, requeue: true }` while inside the interval, else
 *   `{ afterMs: 0, requeue: false }`.
 */
export function shouldRequeue(
  now: number,
  last: number | undefined,
  interval: number,
): { afterMs: number; requeue: boolean } {
  if (!last) return { afterMs: 0, requeue: false };
  const elapsed = now - last;
  if (elapsed < interval) return { afterMs: interval - elapsed, requeue: true };
  return { afterMs: 0, requeue: false };
}

/**
 * The smallest duration, or the default when there is none (even when all are larger).
 *
 * @param durations Collected requeue durations (ms).
 * @param fallback The default (ms).
 */
export function minDurationOrDefault(durations: readonly number[], fallback: number): number {
  return durations.length === 0 ? fallback : Math.min(...durations);
}
