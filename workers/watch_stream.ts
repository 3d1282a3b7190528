/**
 * Reads a watch response body as newline-delimited JSON events, with an idle watchdog: a stream that
 * delivers no bytes at all (no event, no bookmark) for too long is aborted, because a silent stream is
 * indistinguishable from a dead one.
 *
 * @module
 */

import { ClusterCacheError } from "../src/shared/errors.ts";

/** One raw watch event. */
export interface RawWatchEvent {
  type: string;
  object: Record<string, unknown>;
}

/** Why a stream stopped. */
export type StreamEnd = "closed" | "idle";

/** How a stream is read. */
export interface WatchReadOptions {
  /** Abort after this long without a byte. */
  idleTimeoutMs: number;
  /** The longest event line accepted: a hostile endless line must not exhaust the heap. */
  maxEventBytes: number;
}

/**
 * Calls `onEvent` for each event of `body` until the stream ends. The callback may return `false` to
 * stop early.
 *
 * @param body The response body.
 * @param options Idle timeout and the longest line.
 * @param abort Aborted on idle (and by the caller to stop).
 * @returns `"closed"` when the server ended the stream (or the callback stopped), `"idle"` when the
 *   watchdog fired.
 * @throws {ClusterCacheError} `BadResponse` for a line that is not a JSON event or is too long; any
 *   read error.
 */
export async function readWatchEvents(
  body: ReadableStream<Uint8Array>,
  options: WatchReadOptions,
  abort: AbortController,
  onEvent: (event: RawWatchEvent) => boolean | void,
): Promise<StreamEnd> {
  const { idleTimeoutMs, maxEventBytes } = options;
  const reader = body.getReader();
  const decoder = new TextDecoder();
  // The line read so far, in pieces: each chunk is searched for its newline alone, so a long line
  // in many chunks costs its length, not its length squared.
  let pieces: string[] = [];
  let piecesLength = 0;
  let idle = false;
  // One interval per stream instead of re-arming a timer per chunk (watch streams carry many). On
  // idle it cancels the reader, which ends the one pending read at once, even one stuck on a dead
  // connection (a race against a watchdog promise would keep a reaction per chunk alive).
  let lastByte = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastByte < idleTimeoutMs) return;
    idle = true;
    clearInterval(timer);
    abort.abort(new DOMException("watch idle", "TimeoutError"));
    reader.cancel().catch(() => {});
  }, Math.max(10, Math.min(1_000, idleTimeoutMs / 4)));
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (idle) return "idle";
        throw error;
      }
      if (idle) return "idle";
      if (chunk.done) return "closed";
      lastByte = Date.now();
      const text = decoder.decode(chunk.value, { stream: true });
      let start = 0;
      let newline: number;
      while ((newline = text.indexOf("\n", start)) >= 0) {
        const tail = text.slice(start, newline);
        const line = (pieces.length > 0 ? pieces.join("") + tail : tail).trim();
        pieces = [];
        piecesLength = 0;
        start = newline + 1;
        if (line === "") continue;
        let event: RawWatchEvent;
        try {
          event = JSON.parse(line);
        } catch {
          throw new ClusterCacheError(
            "BadResponse",
            `malformed watch event (${line.length} bytes)`,
          );
        }
        if (
          typeof event?.type !== "string" || event.object === null ||
          typeof event.object !== "object"
        ) {
          throw new ClusterCacheError("BadResponse", "watch event without type or object");
        }
        if (onEvent(event) === false) return "closed";
      }
      if (start < text.length) {
        pieces.push(text.slice(start));
        piecesLength += text.length - start;
      }
      // What is left is the start of the next line (its length in UTF-16 units never exceeds its
      // size in bytes, so this never refuses a line within the limit).
      if (piecesLength > maxEventBytes) {
        throw new ClusterCacheError(
          "BadResponse",
          `a watch event is larger than ${maxEventBytes} bytes (maxResponseBytes)`,
        );
      }
    }
  } finally {
    clearInterval(timer);
    await reader.cancel().catch(() => {});
  }
}
