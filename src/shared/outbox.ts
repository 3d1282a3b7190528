/**
 * Batches messages posted in one turn of the event loop into one `postMessage`, so pipelined calls
 * and bursts of watch events pay the cross-thread overhead once. Consecutive events of the same watch
 * merge into one message. A batch carries at most {@linkcode MAX_EVENTS_PER_MESSAGE} events and
 * about `MAX_PART_BYTES` of JSON text: each is one task on the other side, kept short.
 *
 * @module
 */

import type { WatchEvent } from "./client_types.ts";
import { MAX_PART_BYTES } from "./json_parts.ts";

type Batchable<T> = T | { type: "batch"; messages: T[] };

/**
 * Events per message at most (about 1 MB of 2 KB Pods): a 50k-object watch crosses as ~100
 * messages, each its own task on the other side, so that thread gets to run other work in between
 * instead of cloning ~100 MB and calling 50k handlers in one turn.
 */
export const MAX_EVENTS_PER_MESSAGE = 512;

/**
 * A per-turn message batcher.
 *
 * @example Two posts in one turn, one message
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outbox } from "./outbox.ts";
 * const sent: unknown[] = [];
 * const outbox = new Outbox<{ type: "ping" }>((m) => sent.push(m));
 * outbox.post({ type: "ping" });
 * outbox.post({ type: "ping" });
 * outbox.flush();
 * assert.deepEqual(sent, [{ type: "batch", messages: [{ type: "ping" }, { type: "ping" }] }]);
 * outbox.close();
 * ```
 */
export class Outbox<T extends { type: string }> {
  readonly #send: (message: Batchable<T>) => void;
  // A macrotask tick without timers: setTimeout(0) is clamped (~2 ms here), a port message is ~7 µs.
  readonly #tick = new MessageChannel();
  #queue: T[] = [];
  #scheduled = false;
  #closed = false;

  readonly #coalesce: (queue: T[]) => T[];

  /**
   * @param send Posts one message (or a batch) to the other side.
   * @param coalesce Rewrites a turn's messages before sending (e.g. merges responses).
   */
  constructor(send: (message: Batchable<T>) => void, coalesce: (queue: T[]) => T[] = (q) => q) {
    this.#send = send;
    this.#coalesce = coalesce;
    this.#tick.port1.onmessage = () => this.flush();
  }

  /** Queues a message for the end of this turn. */
  post(message: T): void {
    if (this.#closed) return;
    this.#queue.push(message);
    this.#schedule();
  }

  /**
   * Queues a watch event, appending it to the previous message when that carries events of the
   * same watch.
   */
  postEvent(
    watchId: number,
    event: WatchEvent,
    make: (watchId: number, events: WatchEvent[]) => T,
  ): void {
    if (this.#closed) return;
    const last = this.#queue[this.#queue.length - 1] as
      | { type: string; watchId?: number; events?: WatchEvent[] }
      | undefined;
    if (
      last?.type === "events" && last.watchId === watchId && last.events &&
      last.events.length < MAX_EVENTS_PER_MESSAGE
    ) {
      last.events.push(event);
    } else {
      this.#queue.push(make(watchId, [event]));
    }
    this.#schedule();
  }

  #schedule(): void {
    // A macrotask, not a microtask: every response finished in this turn joins the batch.
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#tick.port2.postMessage(0);
  }

  /**
   * Sends everything queued now: one message per turn, or several when events fill more than one
   * (each at most {@linkcode MAX_EVENTS_PER_MESSAGE} events).
   */
  flush(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const queue = this.#coalesce(this.#queue);
    this.#queue = [];
    let part: T[] = [];
    let events = 0;
    let bytes = 0;
    for (const message of queue) {
      const count = (message as { events?: unknown[] }).events?.length ?? 0;
      const size = (message as { json?: string }).json?.length ?? 0;
      if (
        part.length > 0 &&
        (events + count > MAX_EVENTS_PER_MESSAGE || bytes + size > MAX_PART_BYTES)
      ) {
        this.#sendPart(part);
        part = [];
        events = 0;
        bytes = 0;
      }
      part.push(message);
      events += count;
      bytes += size;
    }
    this.#sendPart(part);
  }

  #sendPart(part: T[]): void {
    this.#send(part.length === 1 ? part[0]! : { type: "batch", messages: part });
  }

  /** Drops what is queued and refuses more (the other side is gone). */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#tick.port1.close();
    this.#tick.port2.close();
  }
}
