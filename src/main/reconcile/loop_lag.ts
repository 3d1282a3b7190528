/**
 * How late the main thread's event loop runs (main thread): a timer that should fire every
 * `periodMs` records how much later it did. Tells a probe that timed out because this process was
 * starved of CPU apart from one that timed out because the cluster did not answer.
 *
 * @module
 */

/** Samples kept: at 100 ms a sample, about 6 s of history. */
const SAMPLES = 64;

/**
 * Samples the event loop's lag while started.
 *
 * @example Reading the worst lag of the last two seconds
 * ```ts
 * import assert from "node:assert/strict";
 * import { LoopLagMonitor } from "./loop_lag.ts";
 *
 * const monitor = new LoopLagMonitor(10);
 * monitor.start();
 * const end = Date.now() + 50;
 * while (Date.now() < end) Math.random(); // a blocked event loop
 * await new Promise((r) => setTimeout(r, 30));
 * assert.ok(monitor.maxLagSince(performance.now() - 2_000) >= 30);
 * monitor.stop();
 * ```
 */
export class LoopLagMonitor {
  readonly #periodMs: number;
  readonly #times = new Float64Array(SAMPLES);
  readonly #lags = new Float64Array(SAMPLES);
  #next = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;

  /** @param periodMs How often to sample. */
  constructor(periodMs = 100) {
    this.#periodMs = periodMs;
  }

  /** Starts sampling (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      this.#record(now, Math.max(0, now - this.#last - this.#periodMs));
      this.#last = now;
    }, this.#periodMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #record(time: number, lag: number): void {
    this.#times[this.#next] = time;
    this.#lags[this.#next] = lag;
    this.#next = (this.#next + 1) % SAMPLES;
  }

  /**
   * The largest lag seen by samples taken since `since` (a `performance.now()` time), counting the
   * lag of a sample that is overdue right now: a loop blocked at this very moment shows too.
   */
  maxLagSince(since: number): number {
    let max = 0;
    for (let i = 0; i < SAMPLES; i++) {
      if (this.#times[i]! >= since && this.#lags[i]! > max) max = this.#lags[i]!;
    }
    if (this.#timer !== undefined) {
      max = Math.max(max, performance.now() - this.#last - this.#periodMs);
    }
    return max;
  }
}
