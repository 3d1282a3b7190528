import assert from "node:assert/strict";
import type { WatchEvent } from "../src/shared/client_types.ts";
import { MAX_EVENTS_PER_MESSAGE, Outbox } from "../src/shared/outbox.ts";

type Message = { type: "events"; watchId: number; events: WatchEvent[] } | { type: "ping" };
const event = (i: number): WatchEvent => ({ type: "add", object: { metadata: { name: `o${i}` } } });

Deno.test("outbox: a turn's messages go as one batch", () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  outbox.post({ type: "ping" });
  outbox.postEvent(1, event(0), (watchId, events) => ({ type: "events", watchId, events }));
  outbox.postEvent(1, event(1), (watchId, events) => ({ type: "events", watchId, events }));
  outbox.flush();
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0], {
    type: "batch",
    messages: [{ type: "ping" }, { type: "events", watchId: 1, events: [event(0), event(1)] }],
  });
  outbox.close();
});

Deno.test("outbox: a burst of events crosses in capped messages, each its own postMessage", () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  const total = 5 * MAX_EVENTS_PER_MESSAGE + 7;
  for (let i = 0; i < total; i++) {
    outbox.postEvent(i % 2, event(i), (watchId, events) => ({ type: "events", watchId, events }));
  }
  for (let i = 0; i < total; i++) {
    outbox.postEvent(9, event(i), (watchId, events) => ({ type: "events", watchId, events }));
  }
  outbox.flush();
  const count = (m: unknown): number => {
    const message = m as { type: string; events?: unknown[]; messages?: unknown[] };
    if (message.type === "batch") {
      return message.messages!.reduce((n: number, x) => n + count(x), 0);
    }
    return message.events?.length ?? 0;
  };
  for (const m of sent) {
    assert.ok(count(m) <= MAX_EVENTS_PER_MESSAGE, `${count(m)} events in one message`);
  }
  assert.equal(sent.reduce((n: number, m) => n + count(m), 0), 2 * total, "nothing lost");
  // Order kept within a watch.
  const names = sent.flatMap((m) => {
    const message = m as {
      type: string;
      watchId?: number;
      events?: WatchEvent[];
      messages?: unknown[];
    };
    const all = message.type === "batch" ? message.messages! : [message];
    return (all as { watchId?: number; events?: WatchEvent[] }[])
      .filter((x) => x.watchId === 9)
      .flatMap((x) => x.events!.map((e) => e.object.metadata!.name!));
  });
  assert.deepEqual(names, Array.from({ length: total }, (_, i) => `o${i}`));
  outbox.close();
});
