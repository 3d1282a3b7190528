import assert from "node:assert/strict";
import { ClusterCacheError } from "../mod.ts";
import { type RawWatchEvent, readWatchEvents } from "../workers/watch_stream.ts";

const encoder = new TextEncoder();

function streamOf(pull: (controller: ReadableStreamDefaultController<Uint8Array>) => void) {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull,
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, cancelled: () => cancelled };
}

Deno.test("watch stream: events are parsed line by line, across chunk borders", async () => {
  const lines = [
    `{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MOD`,
    `IFIED","object":{"metadata":{"name":"a"}}}\n\n`,
  ];
  const { body } = streamOf((c) => {
    const next = lines.shift();
    if (next === undefined) c.close();
    else c.enqueue(encoder.encode(next));
  });
  const seen: string[] = [];
  const end = await readWatchEvents(
    body,
    { idleTimeoutMs: 5_000, maxEventBytes: 1024 },
    new AbortController(),
    (e: RawWatchEvent) => void seen.push(e.type),
  );
  assert.equal(end, "closed");
  assert.deepEqual(seen, ["ADDED", "MODIFIED"]);
});

Deno.test("watch stream: a long event in many small chunks, a character split between two, arrives whole", async () => {
  const data = "ä".repeat(50_000); // two bytes each: chunk borders fall inside characters
  const bytes = encoder.encode(
    `{"type":"ADDED","object":{"data":"${data}"}}\n{"type":"DELETED","object":{}}\n`,
  );
  let offset = 0;
  const { body } = streamOf((c) => {
    if (offset >= bytes.length) return c.close();
    c.enqueue(bytes.slice(offset, offset += 333));
  });
  const seen: RawWatchEvent[] = [];
  const end = await readWatchEvents(
    body,
    { idleTimeoutMs: 5_000, maxEventBytes: 1024 * 1024 },
    new AbortController(),
    (e) => void seen.push(e),
  );
  assert.equal(end, "closed");
  assert.deepEqual(seen.map((e) => e.type), ["ADDED", "DELETED"]);
  assert.equal(seen[0]!.object.data, data);
});

Deno.test("watch stream: an endless line fails the watch with a clear error, not the heap", async () => {
  const chunk = encoder.encode(`{"type":"ADDED","object":{"data":"${"x".repeat(64 * 1024)}`);
  let sent = 0;
  const { body, cancelled } = streamOf((c) => {
    sent += chunk.length;
    c.enqueue(chunk.slice(sent === chunk.length ? 0 : 30)); // never a newline
  });
  await assert.rejects(
    readWatchEvents(
      body,
      { idleTimeoutMs: 5_000, maxEventBytes: 1024 * 1024 },
      new AbortController(),
      () => {},
    ),
    (e: Error) =>
      e instanceof ClusterCacheError && e.code === "BadResponse" &&
      /larger than 1048576 bytes/.test(e.message),
  );
  assert.ok(sent < 2 * 1024 * 1024, `read ${sent} bytes before refusing`);
  assert.ok(cancelled(), "the body was cancelled");
});

Deno.test("watch stream: a silent stream ends as idle; the pending read is cancelled", async () => {
  const { body, cancelled } = streamOf(() => {/* never delivers */});
  const abort = new AbortController();
  const started = performance.now();
  const end = await readWatchEvents(
    body,
    { idleTimeoutMs: 200, maxEventBytes: 1024 },
    abort,
    () => {},
  );
  assert.equal(end, "idle");
  assert.ok(abort.signal.aborted, "the request was aborted too");
  assert.ok(cancelled());
  assert.ok(performance.now() - started < 5_000);
});
