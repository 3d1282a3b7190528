import assert from "node:assert/strict";
import type { WatchEvent } from "../src/shared/client_types.ts";
import { FLUSH_AT_MESSAGES, MAX_EVENTS_PER_MESSAGE, Outbox } from "../src/shared/outbox.ts";

type Message = { type: "events"; watchId: number; events: WatchEvent[] } | { type: "ping" };
const event = (i: number): WatchEvent => ({ type: "add", object: { metadata: { name: `o${i}` } } });

const events = (watchId: number, events: WatchEvent[]): Message => ({
  type: "events",
  watchId,
  events,
});
/** Lets the outbox's end-of-turn tick run. */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 10));

Deno.test("outbox: a turn's first message goes at once, the rest as one batch at its end", async () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  outbox.post({ type: "ping" });
  assert.deepEqual(sent, [{ type: "ping" }], "a lone call does not wait for the turn to end");
  outbox.postEvent(1, event(0), events);
  outbox.post({ type: "ping" });
  outbox.postEvent(1, event(1), events);
  outbox.postEvent(1, event(2), events);
  assert.equal(sent.length, 1, "the others wait for the turn's end");
  await nextTurn();
  assert.deepEqual(sent[1], {
    type: "batch",
    messages: [
      { type: "events", watchId: 1, events: [event(0)] },
      { type: "ping" },
      { type: "events", watchId: 1, events: [event(1), event(2)] },
    ],
  }, "in order, consecutive events of a watch merged");
  // A new turn: its first message goes at once again.
  outbox.post({ type: "ping" });
  assert.deepEqual(sent.slice(2), [{ type: "ping" }]);
  await nextTurn();
  assert.equal(sent.length, 3, "nothing else was queued");
  outbox.close();
});

Deno.test("outbox: a turn of many calls sends them in stages as they queue, in order", async () => {
  const sent: { type: string; n?: number; messages?: { n: number }[] }[] = [];
  const outbox = new Outbox<{ type: "call"; n: number }>((m) => sent.push(m));
  const total = 1 + 3 * FLUSH_AT_MESSAGES + 5;
  for (let n = 0; n < total; n++) {
    outbox.post({ type: "call", n });
    // The other thread gets each stage while this one is still producing: stage k is out as soon
    // as its last call was posted, not at the end of the turn.
    assert.equal(sent.length, 1 + Math.floor(n / FLUSH_AT_MESSAGES), `after call ${n}`);
  }
  assert.equal(sent.length, 4, "the first alone, then three full stages");
  await nextTurn();
  assert.equal(sent.length, 5, "the remainder at the turn's end");
  const order = sent.flatMap((m) => m.type === "batch" ? m.messages!.map((x) => x.n) : [m.n!]);
  assert.deepEqual(order, Array.from({ length: total }, (_, n) => n), "nothing lost, in order");
  for (const m of sent.slice(1, 4)) assert.equal(m.messages!.length, FLUSH_AT_MESSAGES);
  outbox.close();
});

Deno.test("outbox: a post never overtakes what waits: events queued first, or a turn flushed early", async () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  outbox.postEvent(1, event(0), events);
  outbox.post({ type: "ping" });
  assert.deepEqual(sent, [], "the post waits behind the event queued before it");
  await nextTurn();
  assert.deepEqual(sent, [{
    type: "batch",
    messages: [{ type: "events", watchId: 1, events: [event(0)] }, { type: "ping" }],
  }]);
  sent.length = 0;
  outbox.post({ type: "ping" });
  outbox.postEvent(2, event(1), events);
  outbox.flush();
  outbox.post({ type: "ping" });
  assert.equal(sent.length, 2, "after a flush mid-turn, the turn is still open: the post queues");
  await nextTurn();
  assert.deepEqual(sent, [
    { type: "ping" },
    { type: "events", watchId: 2, events: [event(1)] },
    { type: "ping" },
  ]);
  outbox.close();
});

Deno.test("outbox: a message that cannot be sent is dropped alone, and its error surfaces", async () => {
  const sent: unknown[] = [];
  // Like postMessage: a batch holding a function cannot be cloned, nor can the message itself.
  const outbox = new Outbox<{ type: "call"; n: number; value?: unknown }>((m) => {
    structuredClone(m);
    sent.push(m);
  });
  outbox.post({ type: "call", n: 0 });
  outbox.post({ type: "call", n: 1 });
  outbox.post({ type: "call", n: 2, value: () => {} });
  outbox.post({ type: "call", n: 3 });
  assert.throws(() => outbox.flush(), (error: Error) => error.name === "DataCloneError");
  assert.deepEqual(sent, [{ type: "call", n: 0 }, { type: "call", n: 1 }, { type: "call", n: 3 }]);
  await nextTurn();
  assert.throws(() => outbox.post({ type: "call", n: 4, value: () => {} }), {
    name: "DataCloneError",
  }, "a message sent at once throws to its own poster");
  outbox.close();
});

Deno.test("outbox: nothing is sent once closed", async () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  outbox.post({ type: "ping" });
  outbox.post({ type: "ping" });
  outbox.close();
  outbox.post({ type: "ping" });
  outbox.postEvent(1, event(0), events);
  await nextTurn();
  assert.deepEqual(sent, [{ type: "ping" }], "the queued one is dropped with the other side");
});

Deno.test("outbox: a burst of events crosses in capped messages, each its own postMessage", () => {
  const sent: unknown[] = [];
  const outbox = new Outbox<Message>((m) => sent.push(m));
  const total = 5 * MAX_EVENTS_PER_MESSAGE + 7;
  for (let i = 0; i < total; i++) {
    outbox.postEvent(i % 2, event(i), events);
  }
  for (let i = 0; i < total; i++) {
    outbox.postEvent(9, event(i), events);
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
