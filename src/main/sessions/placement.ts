/**
 * Where a cluster's session should run, and when it may move (main thread only; decisions, no
 * I/O). The one home of "does this cluster get a worker of its own":
 *
 * - with dedicated workers, always;
 * - when pooled, while its load is too much for a shared worker (its worker said `high`), or for
 *   good once it crashed or hung its pooled worker;
 * - a promoted cluster goes back into the pool once its worker says it is calm, and each time it
 *   does, the next time needs a longer calm (a bursty cluster does not flap between the two);
 * - a move that failed is tried again, with backoff; a wish that came while another move ran is
 *   remembered, not lost.
 *
 * @module
 */

import type { PressureReport } from "../../shared/protocol.ts";
import type { Placement } from "./session.ts";

/** Why a cluster has a worker of its own for good. */
export const CRASHED_POOLED_WORKER = "it crashed or hung its pooled worker";

/** The first retry of a failed move waits this long, doubling up to {@linkcode MOVE_RETRY_MAX_MS}. */
const MOVE_RETRY_MS = 5_000;
const MOVE_RETRY_MAX_MS = 300_000;
/** A cluster demoted n times waits up to 2^n calm periods more before the next demotion. */
const MAX_DEMOTION_DOUBLINGS = 4;

/**
 * Where a session runs: in a worker of its own when the cache gives every cluster one, else where
 * the cluster should run (`wanted`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placementOf } from "./placement.ts";
 * assert.equal(placementOf("dedicated", "pooled"), "dedicated");
 * assert.equal(placementOf("pooled", "pooled"), "pooled");
 * ```
 */
export function placementOf(mode: "dedicated" | "pooled", wanted: Placement): Placement {
  return mode === "dedicated" ? "dedicated" : wanted;
}

/** One cluster's placement: what its load says, and its moves so far. */
export class PlacementState {
  #load: "high" | "calm" = "calm";
  /** When its worker last said it was calm (epoch ms). */
  #calmSince = 0;
  #reason: string | undefined;
  #pinned = false;
  #demotions = 0;
  #failures = 0;
  #notBefore = 0;

  /** Why it wants (or has) a worker of its own, for logs. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Its worker's report: too much for a shared worker, or calm again. */
  report(pressure: PressureReport, now: number): void {
    this.#load = pressure.level;
    if (pressure.level === "calm") this.#calmSince = now;
    else this.#reason = pressure.reason;
  }

  /** It crashed or hung its pooled worker: a worker of its own from now on. */
  pin(): void {
    this.#pinned = true;
    this.#reason = CRASHED_POOLED_WORKER;
  }

  /**
   * Where it should run now.
   *
   * @param calmMs How long a worker waits before it reports calm (the base of the demotion wait).
   */
  wanted(mode: "dedicated" | "pooled", calmMs: number, now: number): Placement {
    return placementOf(mode, this.#wish(calmMs, now));
  }

  /** Where its load and its history put it, in a pool. */
  #wish(calmMs: number, now: number): Placement {
    if (this.#pinned || this.#load === "high") return "dedicated";
    if (this.#reason === undefined) return "pooled"; // never promoted
    const extra = calmMs * (2 ** Math.min(this.#demotions, MAX_DEMOTION_DOUBLINGS) - 1);
    return now - this.#calmSince >= extra ? "pooled" : "dedicated";
  }

  /** When a move may be tried next (epoch ms). */
  get notBefore(): number {
    return this.#notBefore;
  }

  /** A move to `placement` succeeded. */
  moved(placement: Placement): void {
    this.#failures = 0;
    this.#notBefore = 0;
    if (placement === "pooled") {
      this.#demotions++;
      this.#reason = undefined;
    }
  }

  /** A move failed: the next try waits, longer each time. */
  failed(now: number): void {
    this.#notBefore = now + Math.min(MOVE_RETRY_MS * 2 ** this.#failures, MOVE_RETRY_MAX_MS);
    this.#failures++;
  }
}
