/**
 * What one session costs the worker it shares (worker side): the thread time its informers take
 * (parsing, transforming, storing), the watch events it applies and the objects it holds, over a
 * sliding window; and whether that is too much for a pooled worker (`high`) or calm again.
 *
 * Every session's work runs through {@linkcode LoadMeter.measure}, which also marks the session as
 * the one running, so an uncaught error or a hung thread can be blamed on it.
 *
 * @module
 */

import type { PressureReport, PressureThresholds } from "../src/shared/protocol.ts";

/** Which session's code runs now: shared with the main thread, which reads it when the worker hangs. */
export const running = new Int32Array(new SharedArrayBuffer(4));

/** No session (the worker's own code). */
export const NO_SESSION = 0;

/** One slice of the window. */
interface Bucket {
  start: number;
  busyMs: number;
  events: number;
}

/** The sliding window is kept in this many slices. */
const BUCKETS = 10;

/**
 * The load of one session.
 *
 * @example Three seconds of work in a ten-second window is a busy ratio of 0.3
 * ```ts
 * import assert from "node:assert/strict";
 * import { LoadMeter } from "./load_meter.ts";
 * const thresholds = { objects: 100, eventsPerSecond: 50, busyRatio: 0.2, windowMs: 10_000, calmMs: 60_000 };
 * let now = 0;
 * const meter = new LoadMeter(1, thresholds, "calm", () => now);
 * meter.record(3_000, 0);
 * now = 10_000;
 * assert.equal(meter.assess(0)?.level, "high");
 * ```
 */
export class LoadMeter {
  readonly #session: number;
  readonly #thresholds: PressureThresholds;
  readonly #now: () => number;
  readonly #buckets: Bucket[] = [];
  #level: "calm" | "high" = "calm";
  #calmSince: number;

  /**
   * @param session The session measured (marked as running while its work runs).
   * @param level `high` for a session that has a worker of its own (it reports when it calms down).
   * @param now The clock (ms).
   */
  constructor(
    session: number,
    thresholds: PressureThresholds,
    level: "calm" | "high" = "calm",
    now: () => number = () => performance.now(),
  ) {
    this.#session = session;
    this.#thresholds = thresholds;
    this.#level = level;
    this.#now = now;
    this.#calmSince = now();
  }

  /**
   * Runs a piece of the session's work, timing it and marking the session as the one that ran last
   * (the mark stays: an error thrown later from a timer this work armed is most likely its own).
   */
  measure<T>(work: () => T, events = 0): T {
    Atomics.store(running, 0, this.#session);
    const started = performance.now();
    try {
      return work();
    } finally {
      this.record(performance.now() - started, events);
    }
  }

  /**
   * Raises the level ahead of the work (a list too big for a shared worker is about to start).
   *
   * @returns The report to send, unless the level was already high.
   */
  raise(reason: string): PressureReport | undefined {
    this.#calmSince = this.#now();
    if (this.#level === "high") return undefined;
    this.#level = "high";
    return { level: "high", reason };
  }

  /** Adds work done outside {@linkcode LoadMeter.measure}. */
  record(busyMs: number, events: number): void {
    const now = this.#now();
    const slice = this.#thresholds.windowMs / BUCKETS;
    let last = this.#buckets.at(-1);
    if (!last || now - last.start >= slice) {
      last = { start: now, busyMs: 0, events: 0 };
      this.#buckets.push(last);
    }
    last.busyMs += busyMs;
    last.events += events;
  }

  /** Busy ratio and event rate over the window. */
  load(): { busyRatio: number; eventsPerSecond: number } {
    const now = this.#now();
    const { windowMs } = this.#thresholds;
    while (this.#buckets.length > 0 && now - this.#buckets[0]!.start > windowMs) {
      this.#buckets.shift();
    }
    let busy = 0;
    let events = 0;
    for (const bucket of this.#buckets) {
      busy += bucket.busyMs;
      events += bucket.events;
    }
    return { busyRatio: busy / windowMs, eventsPerSecond: events / (windowMs / 1000) };
  }

  /**
   * A report when the level changed: `high` as soon as one threshold is crossed, `calm` once all
   * have stayed under half their threshold for `calmMs`.
   *
   * @param objects Objects the session's informers hold now.
   */
  assess(objects: number): PressureReport | undefined {
    const { busyRatio, eventsPerSecond } = this.load();
    const t = this.#thresholds;
    const over = [
      objects > t.objects ? `objects ${objects} > ${t.objects}` : "",
      eventsPerSecond > t.eventsPerSecond
        ? `events ${eventsPerSecond.toFixed(0)}/s > ${t.eventsPerSecond}/s`
        : "",
      busyRatio > t.busyRatio ? `busy ${busyRatio.toFixed(2)} > ${t.busyRatio}` : "",
    ].filter((r) => r !== "");
    const quiet = objects <= t.objects / 2 && eventsPerSecond <= t.eventsPerSecond / 2 &&
      busyRatio <= t.busyRatio / 2;
    const now = this.#now();
    if (!quiet) this.#calmSince = now;
    if (over.length > 0 && this.#level === "calm") {
      this.#level = "high";
      return { level: "high", reason: over.join(", ") };
    }
    if (this.#level === "high" && quiet && now - this.#calmSince >= t.calmMs) {
      this.#level = "calm";
      return { level: "calm", reason: `under half of every threshold for ${t.calmMs}ms` };
    }
    return undefined;
  }
}
