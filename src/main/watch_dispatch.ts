/**
 * Delivery of one watch's events to its handler on the main thread, with backpressure on the
 * worker when the handler falls behind.
 *
 * @module
 */

import type { WatchEvent } from "../shared/client_types.ts";

/**
 * Backlog of a watch whose handler is behind at which its worker is told to hold its deltas (merged
 * per object there, so bounded by the cluster's objects), and the level at which it resumes.
 */
export const WATCH_BACKLOG_HIGH = 10_000;
export const WATCH_BACKLOG_LOW = 1_000;

/**
 * Delivers events to a handler in order, honouring async handlers and main-thread predicates. A
 * handler that falls behind pauses its watch in the worker (backpressure) instead of letting the
 * backlog here grow without bound.
 */
export class WatchDispatch {
  readonly #handler: (event: WatchEvent) => void | Promise<void>;
  readonly #predicates: ((event: WatchEvent) => boolean)[];
  readonly #onError: (error: unknown) => void;
  readonly #onPressure: (paused: boolean) => void;
  #backlog: WatchEvent[] = [];
  #busy = false;
  #paused = false;

  /** Whether its worker was told to hold its deltas. */
  get paused(): boolean {
    return this.#paused;
  }

  constructor(
    handler: (event: WatchEvent) => void | Promise<void>,
    predicates: ((event: WatchEvent) => boolean)[],
    onError: (error: unknown) => void,
    onPressure: (paused: boolean) => void,
  ) {
    this.#handler = handler;
    this.#predicates = predicates;
    this.#onError = onError;
    this.#onPressure = onPressure;
  }

  push(events: WatchEvent[]): void {
    if (this.#busy) {
      for (const event of events) this.#backlog.push(event);
      if (!this.#paused && this.#backlog.length >= WATCH_BACKLOG_HIGH) {
        this.#paused = true;
        this.#onPressure(true);
      }
      return;
    }
    this.#run(events, 0);
  }

  #run(events: WatchEvent[], from: number): void {
    for (let i = from; i < events.length; i++) {
      const event = events[i]!;
      let result: void | Promise<void>;
      try {
        if (!this.#predicates.every((p) => p(event))) continue;
        result = this.#handler(event);
      } catch (error) {
        this.#onError(error);
        continue;
      }
      if (result && typeof (result as Promise<void>).then === "function") {
        this.#busy = true;
        const rest = events.slice(i + 1);
        (result as Promise<void>).catch((error) => this.#onError(error)).finally(() => {
          this.#busy = false;
          const next = rest.concat(this.#backlog);
          this.#backlog = [];
          if (next.length <= WATCH_BACKLOG_LOW) this.#resume();
          if (next.length > 0) this.push(next);
        });
        return;
      }
    }
    this.#resume(); // caught up
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#onPressure(false);
  }
}
