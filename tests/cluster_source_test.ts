import assert from "node:assert/strict";
import { ClusterSource } from "../src/main/sources/cluster_source.ts";

const event = (name: string, reasons = ["connect"]) => ({
  cluster: { namespace: "ns", name },
  reasons,
  connected: reasons.at(-1) !== "disconnect",
  time: Date.now(),
});

Deno.test("a source nobody consumes never blocks and keeps one request per identity", () => {
  const source = new ClusterSource("c");
  for (let i = 0; i < 10_000; i++) {
    source.deliver("ns/a", [{ namespace: "ns", name: "a" }], event("a"));
  }
  assert.equal(source.pending, 1);
  source.deliver("ns/b", [{ namespace: "ns", name: "b" }], event("b"));
  assert.equal(source.pending, 2);
  source.close();
});

Deno.test("the queue is bounded: beyond the limit the oldest request is dropped and counted", () => {
  const drops: number[] = [];
  const source = new ClusterSource("c", { queueLimit: 2 }, { onDrop: (n) => drops.push(n) });
  for (const name of ["a", "b", "c"]) {
    source.deliver(`ns/${name}`, [{ namespace: "ns", name }], event(name));
  }
  assert.equal(source.pending, 2);
  assert.equal(source.dropped, 1);
  assert.deepEqual(drops, [1]);
  source.close();
});

Deno.test("iteration yields queued requests in order, then waits for new ones, and ends on close", async () => {
  const source = new ClusterSource<string>("c");
  source.deliver("ns/a", ["a"], event("a"));
  source.deliver("ns/b", ["b"], event("b"));
  const iterator = source[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { value: "a", done: false });
  assert.deepEqual(await iterator.next(), { value: "b", done: false });
  const waiting = iterator.next();
  source.deliver("ns/c", ["c"], event("c"));
  assert.deepEqual(await waiting, { value: "c", done: false });
  const ending = iterator.next();
  source.close();
  assert.deepEqual(await ending, { value: undefined, done: true });
});

Deno.test("subscribers get every request with its event; a throwing subscriber is contained", () => {
  const errors: unknown[] = [];
  const source = new ClusterSource<string>("c", {}, { onSubscriberError: (e) => errors.push(e) });
  const seen: string[] = [];
  source.subscribe(() => {
    throw new Error("boom");
  });
  const unsubscribe = source.subscribe((request, e) =>
    seen.push(`${request}:${e.reasons.join("+")}`)
  );
  source.deliver("ns/a", ["a"], event("a", ["connect", "disconnect"]));
  unsubscribe();
  source.deliver("ns/b", ["b"], event("b"));
  assert.deepEqual(seen, ["a:connect+disconnect"]);
  assert.equal(errors.length, 2);
  source.close();
});

Deno.test("an async subscriber that rejects is contained: no unhandled rejection ends the process", async () => {
  const errors: unknown[] = [];
  const source = new ClusterSource<string>("c", {}, { onSubscriberError: (e) => errors.push(e) });
  // deno-lint-ignore require-await
  source.subscribe(async () => {
    throw new Error("boom");
  });
  source.deliver("ns/a", ["a"], event("a"));
  // An unhandled rejection would fail this test (Deno's test sanitizer reports it).
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /boom/);
  source.close();
});

Deno.test("lastEventSent() is tracked per cluster and forgotten on request", () => {
  const source = new ClusterSource("c");
  const e = event("a");
  source.deliver("ns/a", [], e);
  assert.equal(source.lastEventSent("ns/a"), e.time);
  assert.ok(source.tracks("ns/a"));
  source.forget("ns/a");
  assert.equal(source.lastEventSent("ns/a"), 0);
  source.close();
});

Deno.test("a new subscriber first gets the requests that waited for one; later ones skip the queue", () => {
  const source = new ClusterSource<string>("c");
  source.deliver("ns/a", ["a"], event("a", ["connect"]));
  source.deliver("ns/a", ["a"], event("a", ["disconnect"]));
  source.deliver("ns/b", ["b"], event("b"));
  assert.equal(source.pending, 2, "identical requests are merged, keeping the latest event");
  const seen: string[] = [];
  source.subscribe((request, e) => seen.push(`${request}:${e.reasons.join("+")}`));
  assert.deepEqual(seen, ["a:disconnect", "b:connect"]);
  source.deliver("ns/c", ["c"], event("c"));
  assert.deepEqual(seen, ["a:disconnect", "b:connect", "c:connect"]);
  assert.equal(source.pending, 0);
  source.close();
});

Deno.test("a subscriber throwing a value the error hook cannot print stops no other subscriber", () => {
  const source = new ClusterSource<string>("c", {}, {
    onSubscriberError: (e) => void String(e), // as a log line would: throws for this value
  });
  const seen: string[] = [];
  source.subscribe(() => {
    throw Object.create(null);
  });
  source.subscribe((request) => void seen.push(request));
  source.deliver("ns/a", ["a", "b"], event("a"));
  assert.deepEqual(seen, ["a", "b"]);
  source.close();
});

Deno.test("a source closed by its own subscriber takes no more of the event's requests", async () => {
  const source = new ClusterSource<string>("c");
  const seen: string[] = [];
  const unsubscribe = source.subscribe((request) => {
    seen.push(request);
    unsubscribe();
    source.close();
  });
  source.deliver("ns/a", ["a", "b", "c"], event("a"));
  assert.deepEqual(seen, ["a"]);
  assert.equal(source.pending, 0, "nothing queued after close");
  const iterator = source[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { value: undefined, done: true });
});

Deno.test("a source closed by a new subscriber while it replays what waited replays no more", () => {
  const source = new ClusterSource<string>("c");
  source.deliver("ns/a", ["a", "b", "c"], event("a")); // queued: nobody listens yet
  const seen: string[] = [];
  source.subscribe((request) => {
    seen.push(request);
    source.close();
  });
  assert.deepEqual(seen, ["a"]);
});
