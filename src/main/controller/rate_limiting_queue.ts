/**
 * Main thread: client-go's rate-limiting work queue, which {@linkcode Controller} runs on. An item
 * is never processed twice at once: adding one that is being processed marks it dirty and it is
 * handed out again after `done`. Adding one already queued changes nothing but its value.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../../shared/backoff.ts";
import type { RateLimiter } from "./rate_limiter.ts";

/** What the queue reports, for the `workqueue_*` metrics. */
export interface QueueObserver {
  /** An item was added (`workqueue_adds_total`). */
  added(): void;
  /** The number of queued items changed (`workqueue_depth`). */
  depth(items: number): void;
  /** An item waited this long in the queue before being handed out (seconds). */
  queued(seconds: number): void;
  /** An item was processed for this long (seconds). */
  worked(seconds: number): void;
  /** An item was re-added through the rate limiter (`workqueue_retries_total`). */
  retried(): void;
}

/** One item handed out by {@linkcode RateLimitingQueue.get}. */
export interface QueueItem<T> {
  /** The item's identity. */
  key: string;
  /** The item's latest value. */
  item: T;
}

/** A de-duplicating, per-key serialising queue with delayed and rate-limited adds. */
export class RateLimitingQueue<T> {
  readonly #identity: (item: T) => string;
  readonly #limiter: RateLimiter;
  readonly #observer: QueueObserver | undefined;
  /** Queued keys in order, with when they were queued. */
  readonly #queue = new Map<string, number>();
  /** Keys that need processing, with the latest value. */
  readonly #dirty = new Map<string, T>();
  /** Keys being processed, with when processing started. */
  readonly #processing = new Map<string, number>();
  readonly #waiting = new Map<string, { readyAt: number; timer: ReturnType<typeof setTimeout> }>();
  readonly #getters: ((next: QueueItem<T> | undefined) => void)[] = [];
  readonly #drained: (() => void)[] = [];
  #shuttingDown = false;

  /**
   * @param identity The key that makes two items the same.
   * @param limiter Decides delays of {@linkcode RateLimitingQueue.addRateLimited}.
   * @param observer Receives what the metrics need.
   */
  constructor(identity: (item: T) => string, limiter: RateLimiter, observer?: QueueObserver) {
    this.#identity = identity;
    this.#limiter = limiter;
    this.#observer = observer;
  }

  /** Queues `item` unless it is already queued; after shutdown, does nothing. */
  add(item: T): void {
    if (this.#shuttingDown) return;
    const key = this.#identity(item);
    const queued = this.#dirty.has(key);
    // Counted as client-go counts it: an add the queue already holds is not one.
    if (!queued) this.#observer?.added();
    this.#dirty.set(key, item);
    if (queued || this.#processing.has(key)) return;
    this.#queue.set(key, performance.now());
    this.#observer?.depth(this.#queue.size);
    this.#handOut();
  }

  /**
   * Queues `item` after `ms`. An earlier pending delayed add of the same item wins, as in client-go:
   * the item never waits longer than the shortest delay asked for.
   */
  addAfter(item: T, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) return this.add(item);
    ms = Math.min(ms, MAX_TIMER_MS); // longer ones would fire at once
    const key = this.#identity(item);
    const readyAt = performance.now() + ms;
    const pending = this.#waiting.get(key);
    if (pending && pending.readyAt <= readyAt) return;
    clearTimeout(pending?.timer);
    const timer = setTimeout(() => {
      this.#waiting.delete(key);
      this.add(item);
    }, ms);
    this.#waiting.set(key, { readyAt, timer });
  }

  /** Queues `item` after the rate limiter's delay for it (one more failure). */
  addRateLimited(item: T): void {
    if (this.#shuttingDown) return;
    this.#observer?.retried();
    this.addAfter(item, this.#limiter.when(this.#identity(item)));
  }

  /** Forgets `item`'s failures: its next rate-limited add starts from the shortest delay. */
  forget(item: T): void {
    this.#limiter.forget(this.#identity(item));
  }

  /** How many times `item` was re-added through the rate limiter since it was last forgotten. */
  numRequeues(item: T): number {
    return this.#limiter.retries(this.#identity(item));
  }

  /** Queued items (not counting those being processed or waiting for a delay). */
  get length(): number {
    return this.#queue.size;
  }

  /** Items waiting for a delay to pass. */
  get delayed(): number {
    return this.#waiting.size;
  }

  /** Items being processed. */
  get processing(): number {
    return this.#processing.size;
  }

  /** Seconds of work in progress, summed, and of the longest-running item. */
  inProgress(): { unfinishedSeconds: number; longestSeconds: number } {
    const now = performance.now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.#processing.values()) {
      const seconds = (now - started) / 1000;
      unfinished += seconds;
      longest = Math.max(longest, seconds);
    }
    return { unfinishedSeconds: unfinished, longestSeconds: longest };
  }

  /**
   * The next item to process; it stays "processing" until {@linkcode RateLimitingQueue.done}.
   * Resolves `undefined` once the queue shuts down.
   */
  get(): Promise<QueueItem<T> | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const next = this.#take();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    this.#observer?.worked((performance.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.set(key, performance.now());
      this.#observer?.depth(this.#queue.size);
      this.#handOut();
    }
    if (this.#processing.size === 0) { for (const resolve of this.#drained.splice(0)) resolve(); }
  }

  /**
   * Stops handing out items: queued and delayed items are dropped, waiting `get`s resolve
   * `undefined`. Resolves once every item being processed is `done`.
   */
  shutDown(): Promise<void> {
    this.#shuttingDown = true;
    for (const { timer } of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    this.#queue.clear();
    this.#dirty.clear();
    this.#observer?.depth(0);
    for (const resolve of this.#getters.splice(0)) resolve(undefined);
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #take(): QueueItem<T> | undefined {
    const first = this.#queue.entries().next();
    if (first.done) return undefined;
    const [key, queuedAt] = first.value;
    this.#queue.delete(key);
    const item = this.#dirty.get(key)!;
    this.#dirty.delete(key);
    const now = performance.now();
    this.#processing.set(key, now);
    this.#observer?.depth(this.#queue.size);
    this.#observer?.queued((now - queuedAt) / 1000);
    return { key, item };
  }

  #handOut(): void {
    while (this.#getters.length > 0) {
      const next = this.#take();
      if (!next) return;
      this.#getters.shift()!(next);
    }
  }
}
