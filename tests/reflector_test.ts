import assert from "node:assert/strict";
import { Transport } from "../workers/http_transport.ts";
import { Informer } from "../workers/informer.ts";
import { RestMapper } from "../workers/rest_mapper.ts";
import type { Delta } from "../workers/store.ts";
import { SimulatedApiServer, type SimulatedApiServerOptions } from "../testing/sim/api_server.ts";
import { assertConverged, converged } from "./helpers/converge.ts";
import { eventually } from "./helpers/fixture.ts";
import { restConfigFor } from "./helpers/rest_config.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

interface Rig extends AsyncDisposable {
  server: SimulatedApiServer;
  informer: Informer;
  deltas: Delta[];
  logs: string[];
  counts: { list: number; watchRestart: number; error: number };
  create(name: string, data?: Record<string, string>): void;
}

async function rig(
  serverOptions: Partial<SimulatedApiServerOptions> = {},
  informerOptions: {
    idleMs?: number;
    pageSize?: number;
    watchList?: boolean;
    maxResponseBytes?: number;
    permit?: (signal: AbortSignal) => Promise<() => void>;
  } = {},
): Promise<Rig> {
  const server = await SimulatedApiServer.start({ name: "reflector", ...serverOptions });
  const rest = restConfigFor(server);
  const transport = new Transport(rest, informerOptions.maxResponseBytes ?? 64 * 1024 * 1024);
  const deltas: Delta[] = [];
  const logs: string[] = [];
  const counts = { list: 0, watchRestart: 0, error: 0 };
  const informer = new Informer(
    CM,
    new RestMapper(transport),
    transport,
    {
      pageSize: informerOptions.pageSize ?? 500,
      watchRequestTimeoutMs: 30_000,
      watchIdleTimeoutMs: informerOptions.idleMs ?? 10_000,
      maxEventBytes: 64 * 1024 * 1024,
      watchList: informerOptions.watchList ?? true,
      backoff: { initialMs: 50, maxMs: 400 },
      indexes: [],
      ...(informerOptions.permit ? { permit: informerOptions.permit } : {}),
    },
    { debug: (m) => logs.push(m), warn: (m) => logs.push(m) },
    (event) => counts[event]++,
  );
  informer.subscribe(1, {}, (d) => deltas.push(d));
  const type = server.typeOf("", "configmaps")!;
  return {
    server,
    informer,
    deltas,
    logs,
    counts,
    create: (name, data = {}) =>
      void server.store.create(type, { metadata: { name, namespace: "default" }, data }),
    async [Symbol.asyncDispose]() {
      informer.stop();
      transport.close();
      await server.close();
    },
  };
}

async function synced(r: Rig): Promise<void> {
  r.informer.start();
  await r.informer.waitForSync(AbortSignal.timeout(5_000));
}

Deno.test("the reflector lists in pages and then follows changes", async () => {
  await using r = await rig({}, { pageSize: 3, watchList: false });
  for (let i = 0; i < 10; i++) r.create(`cm-${i}`);
  const since = Date.now();
  await synced(r);
  assert.equal(r.informer.store.size, 10);
  const lists = r.server.requestsSince(since).filter((q) => q.path.endsWith("/configmaps"));
  assert.equal(lists.length, 4, "10 objects in pages of 3");
  r.create("late");
  await eventually(() => r.informer.store.size === 11, "the watch to deliver the add");
  assertConverged(r.informer.store.values(), r.server, "", "configmaps");
});

Deno.test("a cleanly closed watch is resumed from the last resourceVersion, without relisting", async () => {
  await using r = await rig();
  await synced(r);
  r.server.dropWatches("close");
  r.create("after-close");
  await eventually(() => r.informer.store.size === 1, "the event after the re-watch");
  assert.equal(r.counts.list, 1);
});

Deno.test("a 410 on re-watch relists once, from the watch cache (resourceVersion=<last>, unpaged), with deletes for what vanished", async () => {
  await using r = await rig({ historySize: 5 });
  r.create("doomed");
  await synced(r);
  await new Promise((res) => setTimeout(res, 5)); // the sync's own requests are older than this
  const since = Date.now();
  r.server.setFaults({ silenceWatches: true });
  const type = r.server.typeOf("", "configmaps")!;
  r.server.store.delete(type, "default", "doomed");
  for (let i = 0; i < 10; i++) r.create(`n-${i}`);
  r.server.setFaults({ silenceWatches: false });
  r.server.dropWatches("close");
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after 410",
  );
  assert.equal(r.counts.list, 2, "exactly one relist");
  assert.ok(r.deltas.some((d) => d.type === "delete" && d.object.metadata!.name === "doomed"));
  const lists = r.server.requestsSince(since).filter((q) => q.path.endsWith("/configmaps"));
  assert.equal(lists.length, 1, "one relist");
  assert.ok(lists[0]!.query.resourceVersion, "at the last resourceVersion seen");
  assert.equal(lists[0]!.query.limit, undefined, "not paged: the watch cache serves it whole");
});

Deno.test("a silent watch is restarted by the idle watchdog and converges", async () => {
  await using r = await rig({}, { idleMs: 300 });
  await synced(r);
  r.server.setFaults({ silenceWatches: true });
  r.create("while-silent");
  await new Promise((res) => setTimeout(res, 100));
  r.server.setFaults({ silenceWatches: false });
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after idle restart",
  );
  assert.ok(r.logs.includes("Watch idle; restarting it"));
  assert.equal(r.counts.list, 1, "a resumed watch, not a relist");
});

Deno.test("a server restart that resets resourceVersions is detected and relisted (new UIDs)", async () => {
  await using r = await rig();
  for (let i = 0; i < 3; i++) r.create(`r-${i}`);
  await synced(r);
  const type = r.server.typeOf("", "configmaps")!;
  for (let i = 0; i < 20; i++) {
    r.server.store.update(type, {
      ...r.server.store.get(type, "default", "r-0")!,
      data: { i: String(i) },
    });
  }
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence before",
  );
  await r.server.restart("reset");
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after the reset",
    15_000,
  );
  assert.ok(r.counts.list >= 2, "relisted after the restart");
});

Deno.test("an event contradicting the cache (another UID under a known name) triggers a relist", async () => {
  await using r = await rig();
  for (let i = 0; i < 3; i++) r.create(`u-${i}`);
  await synced(r);
  const type = r.server.typeOf("", "configmaps")!;
  // The server loses its state (new UIDs, versions restart) while this stream stays connected but
  // silent, and writes race past the cache's last version: no version check can notice.
  r.server.setFaults({ silenceWatches: true });
  r.server.store.restart("reset");
  for (let i = 0; i < 30; i++) {
    const current = r.server.store.get(type, "default", "u-0")!;
    r.server.store.update(type, { ...current, data: { n: String(i) } });
  }
  r.server.setFaults({ silenceWatches: false });
  r.server.dropWatches("close"); // a clean close: resume from the cache's version
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence",
  );
  assert.ok(r.logs.some((l) => l.includes("contradicts the cache")), r.logs.join("\n"));
});

Deno.test("a server restart that jumps resourceVersions ahead gets 410 and relists", async () => {
  await using r = await rig();
  r.create("j");
  await synced(r);
  await r.server.restart("jump");
  r.create("after-jump");
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after the jump",
    15_000,
  );
  assert.ok(r.counts.list >= 2);
});

Deno.test("a watch started against a hung server gives up on its headers within the request timeout", async () => {
  // The rig's watch requests may last 30 s, its ordinary requests 2 s, its idle watchdog 400 ms.
  await using r = await rig({}, { idleMs: 400 });
  await synced(r);
  await r.server.hang(true); // the open watch goes silent; the next one never gets headers
  await new Promise((res) => setTimeout(res, 1_500));
  r.create("after-hang");
  const unhungAt = Date.now();
  await r.server.hang(false);
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence",
    8_000,
  );
  assert.ok(
    Date.now() - unhungAt < 8_000,
    "recovered in seconds, not after the 30 s watch timeout",
  );
});

Deno.test("errors back off (Retry-After honoured) instead of hot-looping, and the informer recovers", async () => {
  await using r = await rig();
  r.create("x");
  r.server.setFaults({ errorRate: { rate: 1, codes: [503], retryAfterSeconds: 1 } });
  const since = Date.now();
  r.informer.start();
  await new Promise((res) => setTimeout(res, 2_500));
  const attempts = r.server.requestsSince(since).length;
  assert.ok(attempts <= 5, `${attempts} requests in 2.5 s with Retry-After: 1`);
  assert.equal(r.informer.synced, false);
  assert.match(r.informer.lastError ?? "", /503 ServiceUnavailable/);
  await r.server.clearFaults();
  await r.informer.waitForSync(AbortSignal.timeout(5_000));
  assertConverged(r.informer.store.values(), r.server, "", "configmaps");
});

Deno.test("a refused kind (403) fails sync waiters at once while the informer keeps retrying", async () => {
  await using r = await rig();
  r.server.setFaults({ forbiddenKinds: ["configmaps"] });
  r.informer.start();
  await assert.rejects(r.informer.waitForSync(AbortSignal.timeout(5_000)), /forbidden/);
  r.server.setFaults({ forbiddenKinds: [] });
  await eventually(() => r.informer.synced, "the informer to sync once allowed");
});

Deno.test("an API server restart (refused, then versions that continue) costs no relist", async () => {
  await using r = await rig();
  r.create("before");
  await synced(r);
  await new Promise((res) => setTimeout(res, 5)); // the sync's own requests are older than this
  const since = Date.now();
  await r.server.stop(); // refused: the watch is cut, re-watches fail and back off
  await new Promise((res) => setTimeout(res, 300));
  await r.server.start();
  r.create("after");
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after the restart",
  );
  assert.equal(r.counts.list, 1, "relists_after_server_restart is 0");
  const watches = r.server.requestsSince(since, { includeWatches: true })
    .filter((q) => q.watch && q.path.endsWith("/configmaps"));
  assert.ok(watches.length >= 1);
  assert.ok(
    watches.every((q) => q.query.resourceVersion),
    `re-watched from a resourceVersion: ${JSON.stringify(watches.map((q) => q.query))}`,
  );
});

Deno.test("WatchList: the informer syncs from one streaming watch at the initial-events-end bookmark", async () => {
  await using r = await rig();
  for (let i = 0; i < 20; i++) r.create(`cm-${i}`);
  const since = Date.now();
  await synced(r);
  assert.equal(r.informer.store.size, 20);
  const requests = r.server.requestsSince(since, { includeWatches: true })
    .filter((q) => q.path.endsWith("/configmaps"));
  assert.equal(requests.length, 1, "no list: one watch");
  assert.equal(requests[0]!.query.sendInitialEvents, "true");
  assert.equal(requests[0]!.query.resourceVersionMatch, "NotOlderThan");
  assert.equal(requests[0]!.query.allowWatchBookmarks, "true");
  r.create("late");
  await eventually(() => r.informer.store.size === 21, "the same stream to go on as a watch");
  assert.equal(r.counts.list, 1);
});

Deno.test("WatchList refused (422, the feature gate off): falls back to paged lists", async () => {
  await using r = await rig({ watchList: false }, { pageSize: 5 });
  for (let i = 0; i < 12; i++) r.create(`cm-${i}`);
  const since = Date.now();
  await synced(r);
  assert.equal(r.informer.store.size, 12);
  const requests = r.server.requestsSince(since, { includeWatches: true })
    .filter((q) => q.path.endsWith("/configmaps"));
  assert.deepEqual(
    requests.slice(0, 4).map((
      q,
    ) => (q.watch ? (q.query.sendInitialEvents ? "stream" : "watch") : "list")),
    ["stream", "list", "list", "list"],
  );
  r.create("late");
  await eventually(() => r.informer.store.size === 13, "the watch after the fallback");
});

Deno.test("a WatchList ended before its initial events (a server shutting down) is not taken for no WatchList: the next sync streams again", async () => {
  await using r = await rig({}, { pageSize: 5 });
  for (let i = 0; i < 12; i++) r.create(`cm-${i}`);
  r.server.endWatchListsEarly(1);
  const since = Date.now();
  await synced(r);
  assert.equal(r.informer.store.size, 12, "synced from a paged list this once");
  // A later consistent relist (the server restarted with versions from 1: they went backwards)
  // streams again.
  const type = r.server.typeOf("", "configmaps")!;
  for (let i = 0; i < 30; i++) {
    r.server.store.update(type, {
      ...r.server.store.get(type, "default", "cm-0")!,
      data: { i: `${i}` },
    });
  }
  const seen = () => (r.informer.store.get("default/cm-0")?.data as { i?: string } | undefined)?.i;
  await eventually(() => seen() === "29", "the updates");
  await r.server.restart("reset");
  r.create("after");
  await eventually(
    () => r.informer.relists >= 1 && r.informer.store.size === 13,
    "the informer to sync again",
  );
  const kinds = r.server.requestsSince(since, { includeWatches: true })
    .filter((q) => q.path.endsWith("/configmaps"))
    .map((q) => (q.watch ? (q.query.sendInitialEvents ? "stream" : "watch") : "list"));
  assert.equal(kinds[0], "stream");
  assert.equal(kinds[1], "list", "the cut stream is followed by a paged list");
  assert.ok(
    kinds.slice(2).includes("stream"),
    `a later sync streams again: ${kinds.join(", ")}`,
  );
});

Deno.test("a WatchList ended by a 410 before its initial events gives back its list-budget place before it backs off and lists again", async () => {
  const timeline: string[] = [];
  let held = 0;
  const permit = () => {
    held++;
    timeline.push("grant");
    return Promise.resolve(() => {
      held--;
      timeline.push("release");
    });
  };
  await using r = await rig({}, { pageSize: 5, permit });
  for (let i = 0; i < 12; i++) r.create(`cm-${i}`);
  r.server.endWatchListsEarly(1, { expired: true });
  await synced(r);
  assert.equal(r.informer.store.size, 12);
  assert.deepEqual(
    timeline,
    ["grant", "release", "grant", "release"],
    "the cut stream's place went back before the paged list took one of its own",
  );
  assert.equal(held, 0);
});

Deno.test("a WatchList silent before its initial events end is not taken for a sync: it lists in pages once", async () => {
  await using r = await rig({}, { idleMs: 300 });
  for (let i = 0; i < 3; i++) r.create(`s-${i}`);
  // A hung handler, or an HTTP/1.1 path with no PING to tell: nothing comes, not even an error.
  r.server.setFaults({ silenceWatches: true });
  await synced(r);
  assert.equal(r.informer.store.size, 3);
  assert.ok(r.logs.some((l) => l.includes("listing in pages once")), r.logs.join("\n"));
});

Deno.test("after a 410, a whole list from the watch cache too big to take is paged from etcd instead of retried forever", async () => {
  await using r = await rig({ historySize: 5 }, {
    pageSize: 5,
    watchList: false,
    maxResponseBytes: 16 * 1024,
  });
  const big = "x".repeat(1024);
  for (let i = 0; i < 20; i++) r.create(`big-${i}`, { big }); // ~20 KB in all, 5 KB a page
  await synced(r);
  r.server.setFaults({ silenceWatches: true });
  for (let i = 0; i < 10; i++) r.create(`more-${i}`); // the history moves past the watch
  r.server.setFaults({ silenceWatches: false });
  r.server.dropWatches("close"); // the resumed watch gets 410: list whole from the watch cache
  await eventually(
    () => converged(r.informer.store.values(), r.server, "", "configmaps"),
    "convergence after the 410",
  );
});

Deno.test("a watch answered with an error whose body then stalls fails within the ordinary timeout, not the watch's", async () => {
  await using server = await SimulatedApiServer.start({ name: "stalled-error" });
  const transport = new Transport(restConfigFor(server, 1_000), 1024 * 1024);
  server.failRequests({ method: "GET", path: /configmaps/ }, 1, 500);
  server.setFaults({ slowBody: { chunkBytes: 10, intervalMs: 120_000 } }); // headers, 10 bytes, then nothing
  const abort = new AbortController();
  const started = performance.now();
  try {
    const failure = await transport.stream("/api/v1/namespaces/default/configmaps", {
      query: { watch: 1 },
      timeoutMs: 120_000,
      signal: abort.signal,
    }).then(() => undefined, (error: unknown) => error);
    assert.equal((failure as { code?: number }).code, 500, String(failure));
    // The ordinary timeout is 1 s; the watch's 120 s. Wide, for a busy machine.
    assert.ok(performance.now() - started < 30_000, "not held for the watch's timeout");
  } finally {
    abort.abort();
    transport.close();
  }
});
