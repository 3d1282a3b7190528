/**
 * A token-bucket rate limiter (client-go's QPS and burst): `burst` tokens, refilled at `qps` per
 * second; callers wait their turn in order.
 *
 * @module
 */

/** A clock, injectable for tests. */
export interface Clock {
  now(): number;
}

const systemClock: Clock = { now: () => performance.now() };

/**
 * Computes how long to wait for a token, without waiting: the pure core of {@linkcode TokenBucket}.
 *
 * @param tokens Tokens available at `last` (may be negative when callers have reserved ahead).
 * @param last When `tokens` was computed (ms).
 * @param now The current time (ms).
 * @param qps Refill rate per second.
 * @param burst Bucket capacity.
 * @returns The tokens after refilling to `now`, capped at `burst`.
 */
export function refill(
  tokens: number,
  last: number,
  now: number,
  qps: number,
  burst: number,
): number {
  return Math.min(burst, tokens + ((now - last) / 1000) * qps);
}

/**
 * A token bucket.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * const limiter = new TokenBucket(20, 30);
 * await limiter.take(); // immediate while the burst lasts
 * ```
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  /**
   * @param qps Sustained rate; `Infinity` disables limiting.
   * @param burst Capacity (at least 1).
   * @param clock Time source.
   */
  constructor(qps: number, burst: number, clock: Clock = systemClock) {
    this.#qps = qps;
    this.#burst = Math.max(1, burst);
    this.#clock = clock;
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  /**
   * Reserves one token and returns how many ms the caller must wait before using it (0 when a
   * token is available now). Reservations queue up: each waits behind the previous ones.
   */
  reserve(): number {
    if (!Number.isFinite(this.#qps)) return 0;
    const now = this.#clock.now();
    this.#tokens = refill(this.#tokens, this.#last, now, this.#qps, this.#burst);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }

  /**
   * Waits for a token.
   *
   * @param signal Aborts the wait (the token is not given back: rare, and harmless).
   */
  async take(signal?: AbortSignal): Promise<void> {
    const wait = this.reserve();
    if (wait <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, wait);
      function done() {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }
      function onAbort() {
        clearTimeout(timer);
        reject(signal!.reason);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
