/**
 * Delivery of one watch's events to its handler on the main thread (main thread only), with
 * backpressure as a credit the worker spends.
 *
 * - The worker sends a watch at most {@linkcode WATCH_WINDOW} events that this side has not
 *   acknowledged; it holds the rest merged per object (bounded by the cluster's objects, as
 *   client-go's DeltaFIFO). This side acknowledges events as its handler gets through them. So the
 *   backlog here stays within the window whatever the handler does, a new watch's initial adds and a
 *   relist's deltas included.
 * - The queue is a ring (client-go's `processorListener`): O(1) to add and to take, whatever an
 *   async handler makes wait.
 * - Handlers run in slices of at most {@linkcode SLICE_MS} (or {@linkcode SLICE_EVENTS} events),
 *   with a macrotask between slices: one watch draining 50,000 events never holds the thread
 *   long enough to delay another cluster's reads.
 *
 * @module
 */

import type { WatchEvent } from "../../shared/client_types.ts";
import { nextMacrotask } from "./macrotask.ts";

/** Events of a watch the worker may send before this side acknowledges them. */
export const WATCH_WINDOW = 1_024;
/** Acknowledged in steps of this many handled events (and whenever the queue runs dry). */
const ACK_STEP = WATCH_WINDOW / 4;
/** The longest a slice of handler work runs before others get their turn. */
export const SLICE_MS = 5;
/** The most events handled in one slice. */
export const SLICE_EVENTS = 512;

/** A first-in first-out queue over a growable ring: O(1) push and shift. */
export class Ring<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  /** Items queued. */
  get size(): number {
    return this.#size;
  }

  /** Adds at the end. */
  push(item: T): void {
    if (this.#size === this.#items.length) {
      // Unroll into a ring twice the size.
      const grown = new Array<T | undefined>(this.#items.length * 2);
      for (let i = 0; i < this.#size; i++) {
        grown[i] = this.#items[(this.#head + i) % this.#items.length];
      }
      this.#items = grown;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
  }

  /** Takes from the front, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }
}

/**
 * Delivers events to a handler in order, honouring async handlers and main-thread predicates, in
 * bounded slices, acknowledging what it has handled so the worker sends more.
 *
 * @example A slow async handler: the backlog stays within the window
 * ```ts ignore
 * const dispatch = new WatchDispatch(async (e) => await slow(e), [], console.error, (n) => ack(n));
 * dispatch.push(eventsFromWorker); // at most WATCH_WINDOW unacknowledged at any time
 * ```
 */
export class WatchDispatch {
  readonly #handler: (event: WatchEvent) => void | Promise<void>;
  readonly #predicates: ((event: WatchEvent) => boolean)[];
  readonly #onError: (error: unknown) => void;
  readonly #ack: (count: number) => void;
  readonly #queue = new Ring<WatchEvent>();
  #handled = 0;
  #draining = false;
  #stopped = false;
  #maxBacklog = 0;
  #idle: PromiseWithResolvers<void> | undefined;
  /** Events pushed, and events handled (or passed over by a predicate), since the start. */
  #pushed = 0;
  #finished = 0;
  /** Callbacks waiting for the handler to finish the events pushed before them, in order. */
  readonly #marks: { at: number; reached: () => void }[] = [];

  /**
   * @param ack Tells the worker how many more events it may send (those handled since last told).
   */
  constructor(
    handler: (event: WatchEvent) => void | Promise<void>,
    predicates: ((event: WatchEvent) => boolean)[],
    onError: (error: unknown) => void,
    ack: (count: number) => void,
  ) {
    this.#handler = handler;
    this.#predicates = predicates;
    this.#onError = onError;
    this.#ack = ack;
  }

  /**
   * Events received and not yet acknowledged: the part of the window in use. A watch moving to
   * another session gives the new one the rest.
   */
  get outstanding(): number {
    return this.#queue.size + this.#handled;
  }

  /** The largest backlog seen (for tests and metrics). */
  get maxBacklog(): number {
    return this.#maxBacklog;
  }

  /** Queues events from the worker and starts handling them. */
  push(events: WatchEvent[]): void {
    if (this.#stopped) return;
    for (const event of events) this.#queue.push(event);
    this.#pushed += events.length;
    if (this.#queue.size > this.#maxBacklog) this.#maxBacklog = this.#queue.size;
    if (!this.#draining) void this.#drain();
  }

  /** Handles nothing more (the watch was stopped). */
  stop(): void {
    this.#stopped = true;
    this.#marks.length = 0;
    this.#settle();
  }

  /**
   * Calls `reached` once the handler has finished every event pushed so far (at once if it has),
   * whatever comes after them; never if the watch stops first.
   */
  whenHandled(reached: () => void): void {
    if (this.#stopped) return;
    if (this.#finished >= this.#pushed) reached();
    else this.#marks.push({ at: this.#pushed, reached });
  }

  /** Resolves once every event pushed so far has been handled (or the watch stopped). */
  idle(): Promise<void> {
    if (this.#stopped || (!this.#draining && this.#queue.size === 0)) return Promise.resolve();
    this.#idle ??= Promise.withResolvers();
    return this.#idle.promise;
  }

  #settle(): void {
    this.#idle?.resolve();
    this.#idle = undefined;
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      let sliceStart = performance.now();
      let inSlice = 0;
      for (let event = this.#queue.shift(); event; event = this.#queue.shift()) {
        if (this.#stopped) return;
        this.#handled++;
        try {
          let result: void | Promise<void> = undefined;
          if (this.#predicates.every((p) => p(event!))) result = this.#handler(event);
          // A thenable whose `then` getter throws is a failure of the handler too.
          if (result && typeof (result as Promise<void>).then === "function") await result;
        } catch (error) {
          this.#failed(error);
        }
        this.#finished++;
        if (this.#marks.length > 0) this.#passMarks();
        if (this.#handled >= ACK_STEP) this.#flushAck();
        if (
          this.#queue.size > 0 &&
          (++inSlice >= SLICE_EVENTS || performance.now() - sliceStart >= SLICE_MS)
        ) {
          // Handlers that resolve at once would run on microtasks forever: let others in.
          await nextMacrotask();
          sliceStart = performance.now();
          inSlice = 0;
        }
      }
      this.#flushAck();
    } finally {
      this.#draining = false;
    }
    // Events pushed while the last one was being awaited.
    if (this.#queue.size > 0 && !this.#stopped) void this.#drain();
    else this.#settle();
  }

  #passMarks(): void {
    while (!this.#stopped && this.#marks.length > 0 && this.#marks[0]!.at <= this.#finished) {
      this.#marks.shift()!.reached();
    }
  }

  /** Reports a handler's failure; a report that fails itself (an odd error value) is dropped. */
  #failed(error: unknown): void {
    try {
      this.#onError(error);
    } catch { /* the drain, and the events after this one, go on */ }
  }

  #flushAck(): void {
    if (this.#handled === 0 || this.#stopped) return;
    const count = this.#handled;
    this.#handled = 0;
    this.#ack(count);
  }
}
