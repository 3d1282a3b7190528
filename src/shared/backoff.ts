/**
 * Exponential backoff with jitter, as informers use it between failed list or watch attempts.
 *
 * @module
 */

/**
 * Backoff state: each `next()` doubles the delay up to `maxMs`, with ±`jitter` randomness; `reset()`
 * starts over after success.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Backoff } from "./backoff.ts";
 * const backoff = new Backoff(800, 30_000, 0);
 * assert.ok(backoff.next() === 800 && backoff.next() === 1600);
 * ```
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * @param initialMs First delay.
   * @param maxMs Largest delay.
   * @param jitter Fraction of randomness (0.2 = ±20%).
   * @param random Random source in [0, 1).
   */
  constructor(initialMs: number, maxMs: number, jitter = 0.2, random: () => number = Math.random) {
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#jitter = jitter;
    this.#random = random;
  }

  /** The next delay in ms. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 40);
    const spread = base * this.#jitter * (this.#random() * 2 - 1);
    return Math.max(0, Math.round(base + spread));
  }

  /** Starts over from the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * The longest delay a timer keeps (2^31 - 1 ms, about 24.8 days): a longer one fires at once, as
 * in browsers and Node. Clamp to it; a wait that long is "a long time" whatever was asked.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Sleeps `ms`, resolving early (without error) when `signal` aborts.
 *
 * @returns `true` when the full time passed, `false` when aborted.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
