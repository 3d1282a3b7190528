/**
 * Batches messages posted in one turn of the event loop, so pipelined calls and bursts of watch
 * events pay the cross-thread overhead once. A message posted while nothing waits goes at once (a
 * lone call does not wait for the turn to end); what follows it in the turn, and every watch event,
 * is queued and goes at the turn's end, or as soon as a `post` finds {@linkcode FLUSH_AT_MESSAGES}
 * queued. Consecutive events of the same watch merge into one message. A message carries at most
 * {@linkcode MAX_EVENTS_PER_MESSAGE} events and about `MAX_PART_BYTES` of JSON text (a queue that
 * holds more goes as several): each is one task on the other side, kept short.
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
 * Messages a turn queues before they go without waiting for its end. The other thread then starts
 * on them while this one produces the rest: 64 reads in flight cross in stages of 16 that overlap,
 * instead of both threads taking turns over one batch of 64 (1.75x the pipelined get rate,
 * measured; 8 or 32 gain less).
 */
export const FLUSH_AT_MESSAGES = 16;

/**
 * A per-turn message batcher.
 *
 * @example Three posts in one turn: the first at once, the others in one message
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outbox } from "./outbox.ts";
 * const sent: unknown[] = [];
 * const outbox = new Outbox<{ type: "ping"; n: number }>((m) => sent.push(m));
 * outbox.post({ type: "ping", n: 1 });
 * outbox.post({ type: "ping", n: 2 });
 * outbox.post({ type: "ping", n: 3 });
 * outbox.flush();
 * assert.deepEqual(sent, [
 *   { type: "ping", n: 1 },
 *   { type: "batch", messages: [{ type: "ping", n: 2 }, { type: "ping", n: 3 }] },
 * ]);
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
  readonly #undeliverable: (message: T, error: unknown) => void;

  /**
   * @param send Posts one message (or a batch) to the other side.
   * @param coalesce Rewrites a turn's messages before sending (e.g. merges responses).
   * @param undeliverable Told of a message `send` refused (e.g. a value that cannot be cloned),
   *   which is dropped alone: the others go. By default the error is thrown, after the others went.
   */
  constructor(
    send: (message: Batchable<T>) => void,
    coalesce: (queue: T[]) => T[] = (q) => q,
    undeliverable: (message: T, error: unknown) => void = (_, error) => {
      throw error;
    },
  ) {
    this.#send = send;
    this.#coalesce = coalesce;
    this.#undeliverable = undeliverable;
    this.#tick.port1.onmessage = () => {
      this.#scheduled = false;
      this.flush();
    };
  }

  /**
   * Sends a message: at once when nothing was sent or queued since the last end of turn, else
   * queued behind what was (sent at the turn's end, or now when {@linkcode FLUSH_AT_MESSAGES} are
   * queued). Order is kept.
   *
   * @throws What `undeliverable` throws for this message (by default, what `send` threw).
   */
  post(message: T): void {
    if (this.#closed) return;
    if (!this.#scheduled) {
      this.#schedule();
      this.#sendEach([message]);
      return;
    }
    this.#queue.push(message);
    if (this.#queue.length >= FLUSH_AT_MESSAGES) this.flush();
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
    // A macrotask, not a microtask: every response finished in this turn joins the batch. Until it
    // runs, the turn counts as begun (its first message went at once).
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#tick.port2.postMessage(0);
  }

  /**
   * Sends everything queued now: in one message, or several when events or JSON text fill more
   * than one. The turn stays open: later posts still queue until its end. A message that cannot be
   * sent is dropped alone and handed to `undeliverable` once the others went.
   */
  flush(): void {
    if (this.#queue.length === 0) return;
    const parts: T[][] = [];
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
        parts.push(part);
        part = [];
        events = 0;
        bytes = 0;
      }
      part.push(message);
      events += count;
      bytes += size;
    }
    parts.push(part);
    const refused: [T, unknown][] = [];
    for (const part of parts) {
      try {
        this.#send(part.length === 1 ? part[0]! : { type: "batch", messages: part });
      } catch {
        // One message that cannot be cloned must not take its batch with it.
        this.#sendEach(part, refused);
      }
    }
    for (const [message, error] of refused) this.#undeliverable(message, error);
  }

  /** Sends each message alone; those refused are collected in `refused`, or reported now. */
  #sendEach(messages: T[], refused?: [T, unknown][]): void {
    for (const message of messages) {
      try {
        this.#send(message);
      } catch (error) {
        if (refused) refused.push([message, error]);
        else this.#undeliverable(message, error);
      }
    }
  }

  /** Drops what is queued and refuses more (the other side is gone). */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#tick.port1.close();
    this.#tick.port2.close();
  }
}
