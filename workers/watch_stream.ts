/**
 * Reads a watch response body as newline-delimited JSON events, with an idle watchdog: a stream that
 * delivers no bytes at all (no event, no bookmark) for too long is aborted, because a silent stream is
 * indistinguishable from a dead one.
 *
 * @module
 */

import { ClusterCacheError } from "../src/errors.ts";

/** One raw watch event. */
export interface RawWatchEvent {
  type: string;
  object: Record<string, unknown>;
}

/** Why a stream stopped. */
export type StreamEnd = "closed" | "idle";

/**
 * Calls `onEvent` for each event of `body` until the stream ends. The callback may return `false` to
 * stop early.
 *
 * @param body The response body.
 * @param idleTimeoutMs Abort after this long without a byte.
 * @param abort Aborted on idle (and by the caller to stop).
 * @returns `"closed"` when the server ended the stream (or the callback stopped), `"idle"` when the
 *   watchdog fired.
 * @throws {ClusterCacheError} `BadResponse` for a line that is not a JSON event; any read error.
 */
export async function readWatchEvents(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs: number,
  abort: AbortController,
  onEvent: (event: RawWatchEvent) => boolean | void,
): Promise<StreamEnd> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let idle = false;
  // Resolves when the watchdog fires: a pending read is raced against it, so ending an idle stream
  // does not depend on the abort reaching a read stuck on a dead connection.
  const { promise: idleFired, resolve: fireIdle } = Promise.withResolvers<
    ReadableStreamReadResult<Uint8Array>
  >();
  // One interval per stream instead of re-arming a timer per chunk (watch streams carry many).
  let lastByte = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastByte < idleTimeoutMs) return;
    idle = true;
    abort.abort(new DOMException("watch idle", "TimeoutError"));
    fireIdle({ done: true } as ReadableStreamReadResult<Uint8Array>);
  }, Math.max(10, Math.min(1_000, idleTimeoutMs / 4)));
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await Promise.race([reader.read(), idleFired]);
      } catch (error) {
        if (idle) return "idle";
        throw error;
      }
      if (idle) return "idle";
      if (chunk.done) return "closed";
      lastByte = Date.now();
      buffer += decoder.decode(chunk.value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
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
    }
  } finally {
    clearInterval(timer);
    await reader.cancel().catch(() => {});
  }
}
