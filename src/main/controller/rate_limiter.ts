/**
 * Main thread: how long a controller waits before retrying an item, as client-go's workqueue rate
 * limiters decide it. Pure arithmetic over an injectable clock.
 *
 * @module
 */

import { TokenBucket } from "../../shared/token_bucket.ts";

/**
 * Decides retry delays per item, like client-go's `workqueue.TypedRateLimiter`.
 *
 * @example A limiter of your own: a fixed delay
 * ```ts
 * import type { RateLimiter } from "@fleetkit/clustercache/controller";
 * const fixed: RateLimiter = { when: () => 1_000, forget: () => {}, retries: () => 0 };
 * ```
 */
export interface RateLimiter {
  /** The delay (ms) before `item` may be retried; each call counts as one more failure. */
  when(item: string): number;
  /** Forgets `item`'s failures (it succeeded). */
  forget(item: string): void;
  /** How many failures of `item` are counted. */
  retries(item: string): number;
}

/**
 * Per-item exponential backoff: `baseMs * 2^failures`, capped at `maxMs` (client-go's
 * `ItemExponentialFailureRateLimiter`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExponentialFailureRateLimiter } from "@fleetkit/clustercache/controller";
 * const limiter = new ExponentialFailureRateLimiter(5, 1_000_000);
 * assert.deepEqual([limiter.when("a"), limiter.when("a"), limiter.when("b")], [5, 10, 5]);
 * limiter.forget("a");
 * assert.equal(limiter.when("a"), 5);
 * ```
 */
export class ExponentialFailureRateLimiter implements RateLimiter {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #failures = new Map<string, number>();

  /**
   * Creates the limiter.
   *
   * @param baseMs The first delay. Default 5 ms.
   * @param maxMs The longest delay. Default 1,000 s.
   */
  constructor(baseMs = 5, maxMs = 1_000_000) {
    if (!(baseMs >= 0) || !(maxMs >= baseMs)) {
      throw new RangeError(`rate limiter: need 0 <= baseMs <= maxMs, got ${baseMs}, ${maxMs}`);
    }
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  /** {@inheritDoc RateLimiter.when} */
  when(item: string): number {
    const failures = this.#failures.get(item) ?? 0;
    this.#failures.set(item, failures + 1);
    return Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(failures, 62));
  }

  /** {@inheritDoc RateLimiter.forget} */
  forget(item: string): void {
    this.#failures.delete(item);
  }

  /** {@inheritDoc RateLimiter.retries} */
  retries(item: string): number {
    return this.#failures.get(item) ?? 0;
  }
}

/**
 * One token bucket for all items together (client-go's `BucketRateLimiter`): however many items fail,
 * retries happen at most `qps` per second after a burst of `burst`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BucketRateLimiter } from "@fleetkit/clustercache/controller";
 * const limiter = new BucketRateLimiter(10, 2, { now: () => 0 });
 * assert.deepEqual([limiter.when("a"), limiter.when("b"), limiter.when("c")], [0, 0, 100]);
 * ```
 */
export class BucketRateLimiter implements RateLimiter {
  readonly #bucket: TokenBucket;

  /**
   * Creates the limiter.
   *
   * @param qps Retries per second. Default 10.
   * @param burst Retries at once. Default 100.
   * @param clock Time source in ms, for tests.
   */
  constructor(qps = 10, burst = 100, clock?: { now(): number }) {
    if (!(qps > 0) || !(burst >= 1)) {
      throw new RangeError(`rate limiter: need qps > 0 and burst >= 1, got ${qps}, ${burst}`);
    }
    this.#bucket = clock ? new TokenBucket(qps, burst, clock) : new TokenBucket(qps, burst);
  }

  /** {@inheritDoc RateLimiter.when} */
  when(_item: string): number {
    return Math.ceil(this.#bucket.reserve().waitMs);
  }

  /** {@inheritDoc RateLimiter.forget} */
  forget(_item: string): void {}

  /** {@inheritDoc RateLimiter.retries} */
  retries(_item: string): number {
    return 0;
  }
}

/**
 * The longest delay of several limiters (client-go's `MaxOfRateLimiter`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExponentialFailureRateLimiter, MaxOfRateLimiter } from "@fleetkit/clustercache/controller";
 * const limiter = new MaxOfRateLimiter(
 *   new ExponentialFailureRateLimiter(5, 100),
 *   new ExponentialFailureRateLimiter(20, 40),
 * );
 * assert.deepEqual([limiter.when("a"), limiter.when("a"), limiter.when("a")], [20, 40, 40]);
 * ```
 */
export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  /**
   * Creates the limiter.
   *
   * @param limiters The limiters; every one counts each failure.
   */
  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new RangeError("MaxOfRateLimiter needs a limiter");
    this.#limiters = limiters;
  }

  /** {@inheritDoc RateLimiter.when} */
  when(item: string): number {
    return Math.max(...this.#limiters.map((limiter) => limiter.when(item)));
  }

  /** {@inheritDoc RateLimiter.forget} */
  forget(item: string): void {
    for (const limiter of this.#limiters) limiter.forget(item);
  }

  /** {@inheritDoc RateLimiter.retries} */
  retries(item: string): number {
    return Math.max(...this.#limiters.map((limiter) => limiter.retries(item)));
  }
}

/**
 * controller-runtime's default: per-item exponential backoff from 5 ms to 1,000 s, and at most 10
 * retries per second overall after a burst of 100.
 *
 * @returns A new limiter.
 */
export function defaultControllerRateLimiter(): RateLimiter {
  return new MaxOfRateLimiter(
    new ExponentialFailureRateLimiter(5, 1_000_000),
    new BucketRateLimiter(10, 100),
  );
}
