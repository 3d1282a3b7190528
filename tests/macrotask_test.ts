/** Yielding to the event loop (main thread): one message a yield, and none left behind. */
import assert from "node:assert/strict";
import { nextMacrotask } from "../src/main/watches/macrotask.ts";

Deno.test("a long drain that yields at every slice posts one message a yield, not a growing backlog", async () => {
  const Original = globalThis.MessageChannel;
  let posted = 0;
  let delivered = 0;
  globalThis.MessageChannel = class extends Original {
    constructor() {
      super();
      const post = this.port2.postMessage.bind(this.port2);
      this.port2.postMessage = (message: unknown) => {
        posted++;
        post(message);
      };
      this.port1.addEventListener("message", () => delivered++);
    }
  };
  try {
    const SLICES = 1_000;
    for (let i = 0; i < SLICES; i++) await nextMacrotask();
    assert.ok(posted <= SLICES + 1, `${posted} messages for ${SLICES} yields`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(delivered, posted, "none left queued");
  } finally {
    globalThis.MessageChannel = Original;
  }
});

Deno.test("waiters that yield together are woken together, and later ones too", async () => {
  const order: string[] = [];
  await Promise.all(
    ["a", "b", "c"].map(async (name) => {
      await nextMacrotask();
      order.push(name);
      await nextMacrotask();
      order.push(`${name}2`);
    }),
  );
  assert.deepEqual(order, ["a", "b", "c", "a2", "b2", "c2"]);
});
