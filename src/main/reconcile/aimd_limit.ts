/**
 * A concurrency limit set by outcomes (main thread), the way TCP sets its window (AIMD): how many
 * connection attempts, and how many health probes, may be out at once. Until the first overload
 * every success widens the limit by one (TCP's slow start: it doubles each round of attempts, so a
 * fleet connecting on an idle machine is not held to a trickle); after it, by 1/limit; either only
 * while the limit is what holds attempts back. An attempt that timed out (the machine or the API
 * servers are overloaded) halves it, once per episode. A fixed count either wastes a fast machine
 * or, on a slow one, lets every attempt time out, fail and retry so that the load never drains.
 *
 * @module
 */

/** What a finished attempt says about the load: it widens, narrows or leaves the limit. */
export type AimdOutcome = "success" | "overload" | "neutral";

/** Bounds of the limit. */
export interface AimdLimitOptions {
  /** Attempts allowed at once before any outcome is known. */
  initial: number;
  /** The limit never falls below this (at least 1). */
  min: number;
  /** The limit never grows past this. */
  max: number;
  /** Clock (ms); injectable for tests. */
  now?: () => number;
}

/** One admitted attempt; call `release` exactly once with its outcome. */
export interface Admission {
  /** When the attempt was admitted. */
  readonly admittedAt: number;
  /** Gives the slot back and adjusts the limit. Later calls are ignored. */
  release(outcome: AimdOutcome): void;
}

interface Waiter {
  resolve(admission: Admission): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * An AIMD concurrency limit with a FIFO queue of waiting attempts.
 *
 * @example Successes widen the limit; a timeout halves it and ends the slow start
 * ```ts
 * import assert from "node:assert/strict";
 * import { AimdLimit } from "./aimd_limit.ts";
 *
 * const admission = new AimdLimit({ initial: 2, min: 1, max: 64 });
 * const round = [await admission.acquire(), await admission.acquire()];
 * for (const attempt of round) attempt.release("success"); // the limit held: 2 + 1 + 1
 * assert.equal(admission.limit, 4);
 * (await admission.acquire()).release("success"); // 1 of 4 out: the limit held nothing back
 * assert.equal(admission.limit, 4);
 * (await admission.acquire()).release("overload");
 * assert.equal(admission.limit, 2);
 * ```
 */
export class AimdLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #waiting: Waiter[] = [];
  #limit: number;
  #inFlight = 0;
  #lastDecrease = Number.NEGATIVE_INFINITY;
  /** No overload seen yet: each success adds one. */
  #slowStart = true;
  /** Attempts admitted so far, and the last of them admitted while the limit was full. */
  #admitted = 0;
  #fullAt = 0;

  /** @param options Bounds of the limit. */
  constructor(options: AimdLimitOptions) {
    this.#min = Math.max(1, options.min);
    this.#max = Math.max(this.#min, options.max);
    this.#limit = Math.min(this.#max, Math.max(this.#min, options.initial));
    this.#now = options.now ?? (() => performance.now());
  }

  /** The current limit (fractional: past slow start it grows by 1/limit a success). */
  get limit(): number {
    return this.#limit;
  }

  /** Attempts admitted and not yet released. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Attempts waiting for admission. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for admission, in order of arrival.
   *
   * @throws `signal.reason` when `signal` aborts first (the place in the queue is given up).
   */
  acquire(signal?: AbortSignal): Promise<Admission> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiting.length === 0 && this.#inFlight < Math.floor(this.#limit)) {
      return Promise.resolve(this.#admit());
    }
    this.#fullAt = this.#admitted; // one waits: every attempt out now ran against a full limit
    const { promise, resolve, reject } = Promise.withResolvers<Admission>();
    const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
    if (signal) {
      waiter.onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
    }
    this.#waiting.push(waiter);
    return promise;
  }

  #admit(): Admission {
    this.#inFlight++;
    const seq = ++this.#admitted;
    if (this.#inFlight >= Math.floor(this.#limit)) this.#fullAt = seq;
    const admittedAt = this.#now();
    let released = false;
    return {
      admittedAt,
      release: (outcome) => {
        if (released) return;
        released = true;
        this.#inFlight--;
        // Only a limit that was full while this attempt ran has earned more room (RFC 7661's rule
        // for TCP's window): a trickle of reconnects must not lift it to the maximum untested.
        this.#adjust(outcome, admittedAt, this.#fullAt >= seq);
        this.#pump();
      },
    };
  }

  #adjust(outcome: AimdOutcome, admittedAt: number, limited: boolean): void {
    if (outcome === "success" && limited) {
      const step = this.#slowStart ? 1 : 1 / this.#limit;
      this.#limit = Math.min(this.#max, this.#limit + step);
    } else if (outcome === "overload" && admittedAt >= this.#lastDecrease) {
      // Attempts admitted before the last decrease belong to the episode it already answered.
      this.#slowStart = false;
      this.#limit = Math.max(this.#min, this.#limit / 2);
      this.#lastDecrease = this.#now();
    }
  }

  #pump(): void {
    while (this.#waiting.length > 0 && this.#inFlight < Math.floor(this.#limit)) {
      const waiter = this.#waiting.shift()!;
      if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
      waiter.resolve(this.#admit());
    }
  }
}
