/**
 * The worker's connection to one API server: HTTP/2 on the pinned TLS socket itself, one connection
 * per cluster, flow control as client-go's, dead connections found by PING.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { SimulatedApiServer } from "../testing/mod.ts";
import { PinnedConnection, type PinnedTarget } from "../workers/pinned_connection.ts";
import { eventually } from "./helpers/fixture.ts";

function targetOf(server: SimulatedApiServer, url = server.url): PinnedTarget {
  const c = server.credentials();
  return {
    server: url,
    caPem: c.caPem,
    clientCertificatePem: c.clientCertificatePem,
    clientKeyPem: c.clientKeyPem,
    deniedNetworks: [],
  };
}

function get(connection: PinnedConnection, path: string, signal = AbortSignal.timeout(10_000)) {
  return connection.request({
    method: "GET",
    path,
    headers: { accept: "application/json" },
    signal,
  });
}

function seed(server: SimulatedApiServer, count: number, bytes: number): void {
  const type = server.typeOf("", "configmaps")!;
  for (let i = 0; i < count; i++) {
    server.store.create(type, {
      metadata: { name: `big-${i}`, namespace: "default" },
      data: { v: "x".repeat(bytes) },
    });
  }
}

/** A TCP relay that can go silent both ways without closing: a cable cut, as the client sees it. */
async function relay(port: number) {
  const sockets = new Set<net.Socket>();
  let silent = false;
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: "127.0.0.1", port });
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
      sockets.add(from);
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
      from.on("data", (chunk) => {
        if (!silent) to.write(chunk);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => silent = true,
    [Symbol.dispose]() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

Deno.test("one HTTP/2 connection carries concurrent requests and a watch", async () => {
  await using server = await SimulatedApiServer.start({ name: "one-connection" });
  const connection = new PinnedConnection(targetOf(server));
  try {
    const watch = await get(connection, "/api/v1/configmaps?watch=true");
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => get(connection, "/api/v1/namespaces/default/configmaps")),
    );
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal((await answer.json()).kind, "ConfigMapList");
    }
    assert.deepEqual(server.connections.map((c) => c.protocol), ["h2"]);
    await watch.body?.cancel();
  } finally {
    connection.close();
  }
});

Deno.test("a body nobody reads holds its stream's window only: other requests on the connection go on", async () => {
  await using server = await SimulatedApiServer.start({ name: "window" });
  seed(server, 2_000, 4_000); // ~8 MB: more than a stream's window, far more than HTTP/2's default 64 KB
  const connection = new PinnedConnection(targetOf(server));
  try {
    const unread = await get(connection, "/api/v1/namespaces/default/configmaps");
    assert.equal(unread.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the server fills what it may
    const version = await get(connection, "/version", AbortSignal.timeout(5_000));
    assert.equal(version.status, 200, "a stalled body must not stall the connection");
    await version.body?.cancel();
    // Read late, the paused body is complete and exact.
    const list = await unread.json();
    assert.equal(list.items.length, 2_000);
    assert.equal(server.connections.length, 1);
  } finally {
    connection.close();
  }
});

Deno.test("a connection that goes silent (no FIN) is pinged and closed: its watch fails, the next request reconnects", async () => {
  await using server = await SimulatedApiServer.start({ name: "silent" });
  using relayed = await relay(server.port);
  const url = `https://127.0.0.1:${relayed.port}`;
  const liveness = { readIdleMs: 300, pingTimeoutMs: 300 };
  const pinged = new PinnedConnection(targetOf(server, url), liveness);
  // The same cut without PINGs: what the watch would do without them (nothing, for its whole timeout).
  const unpinged = new PinnedConnection(targetOf(server, url), {
    readIdleMs: 60_000,
    pingTimeoutMs: 60_000,
  });
  try {
    const watches = await Promise.all(
      [pinged, unpinged].map((c) => get(c, "/api/v1/configmaps?watch=true")),
    );
    const ended = watches.map((w) => {
      const state = { failed: false };
      w.body!.pipeTo(new WritableStream()).catch(() => state.failed = true);
      return state;
    });
    relayed.cut();
    await eventually(() => ended[0]!.failed, "the pinged watch to fail", 5_000);
    assert.equal(ended[1]!.failed, false, "without PINGs the cut goes unnoticed");
    // The cable is still cut: a new connection through it cannot be made; straight to the server it can.
    const direct = new PinnedConnection(targetOf(server), liveness);
    try {
      assert.equal((await get(direct, "/version")).status, 200);
    } finally {
      direct.close();
    }
  } finally {
    pinged.close();
    unpinged.close();
  }
});

Deno.test("a reset stream fails its body; a GOAWAY sends new requests to a new connection", async () => {
  await using server = await SimulatedApiServer.start({ name: "resets" });
  const connection = new PinnedConnection(targetOf(server));
  try {
    const watch = await get(connection, "/api/v1/configmaps?watch=true");
    const read = watch.body!.pipeTo(new WritableStream());
    await eventually(() => server.dropWatches("reset-stream") === 1, "the watch to be reset");
    await assert.rejects(read, "a reset stream is not a complete body");
    assert.equal((await get(connection, "/version")).status, 200);
    const [old] = server.connections;
    assert.equal(server.connections.length, 1, "a reset stream leaves its connection");
    // A watch in flight when the GOAWAY comes goes on to its end on the old connection.
    const stop = new AbortController();
    const longWatch = await get(connection, "/api/v1/configmaps?watch=true", stop.signal);
    const events: string[] = [];
    const reading = longWatch.body!.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (text) => void events.push(text) }),
    ).catch(() => events.push("<failed>"));
    assert.equal(server.goAway(), 1);
    const type = server.typeOf("", "configmaps")!;
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.store.create(type, { metadata: { name: "after-goaway", namespace: "default" } });
    await eventually(() => events.join("").includes("after-goaway"), "the event on the old watch");
    assert.equal((await get(connection, "/version")).status, 200);
    assert.deepEqual(
      server.connections.map((c) => c.id === old!.id),
      [true, false],
      "the new request took a new connection; the old one still carries its watch",
    );
    stop.abort();
    await reading;
    await eventually(() => server.connections.length === 1, "the old connection to end");
  } finally {
    connection.close();
  }
});

Deno.test("HTTP/1.1 servers: each request on a connection of its own, closed after it", async () => {
  await using server = await SimulatedApiServer.start({ name: "h1", http2: false });
  const connection = new PinnedConnection(targetOf(server));
  try {
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => get(connection, "/api/v1/namespaces/default/configmaps")),
    );
    for (const answer of answers) assert.equal((await answer.json()).kind, "ConfigMapList");
    assert.ok(server.requests.every((q) => q.protocol === "http/1.1"));
    await eventually(() => server.connections.length === 0, "every connection closed");
  } finally {
    connection.close();
  }
});
