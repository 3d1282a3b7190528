/**
 * A token-bucket rate limiter (client-go's QPS and burst): `burst` tokens, refilled at `qps` per
 * second; callers wait their turn in order.
 *
 * @module
 */

import { ClusterCacheError } from "./errors.ts";

/** One reserved token. */
export interface Reservation {
  /** How long to wait before using the token (ms). */
  readonly waitMs: number;
  /** Gives the token back (the caller will not use it). Later calls are ignored. */
  cancel(): void;
}

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
   * Reserves one token: how many ms the caller must wait before using it (0 when one is available
   * now), and how to give it back. Reservations queue up: each waits behind the previous ones.
   */
  reserve(): Reservation {
    if (!Number.isFinite(this.#qps)) return { waitMs: 0, cancel: () => {} };
    const now = this.#clock.now();
    this.#tokens = refill(this.#tokens, this.#last, now, this.#qps, this.#burst);
    this.#last = now;
    this.#tokens -= 1;
    const waitMs = this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
    let cancelled = false;
    return {
      waitMs,
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        this.#tokens = Math.min(this.#burst, this.#tokens + 1);
      },
    };
  }

  /**
   * Waits for a token. Like client-go's limiter, a wait that would outlast `maxWaitMs` (the
   * request's deadline) is refused at once, and an aborted wait gives its token back: a burst of
   * calls that time out does not delay the ones after it.
   *
   * @throws {ClusterCacheError} `Timeout` when the wait would pass `maxWaitMs`; `signal.reason`
   *   when `signal` aborts first.
   */
  async take(signal?: AbortSignal, maxWaitMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    const reservation = this.reserve();
    if (reservation.waitMs <= 0) return;
    if (reservation.waitMs > maxWaitMs) {
      reservation.cancel();
      throw new ClusterCacheError(
        "Timeout",
        `client rate limiter: waiting ${
          Math.ceil(reservation.waitMs)
        }ms for a token would pass the request's deadline`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, reservation.waitMs);
      function done() {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }
      function onAbort() {
        clearTimeout(timer);
        reservation.cancel();
        reject(signal!.reason);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
