/**
 * The worker's connection to one API server: HTTP/2 on the pinned TLS socket itself, one connection
 * per cluster, flow control as client-go's, dead connections found by PING.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { createCertificateAuthority, issueCertificate } from "../testing/sim/certs.ts";
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

Deno.test("more watches than a connection carries streams: what comes next goes on another connection, and a full one drained closes", async () => {
  // kube-apiserver allows 100 streams a connection (and so does the simulator): a cluster whose
  // every kind is watched (as Argo CD's cache does) fills one.
  await using server = await SimulatedApiServer.start({ name: "many-kinds" });
  const connection = new PinnedConnection(targetOf(server));
  const watching = new AbortController();
  try {
    const watches = Array.from(
      { length: 250 },
      (_, i) =>
        get(connection, `/api/v1/namespaces/ns-${i}/configmaps?watch=1`, watching.signal)
          .catch(() => undefined),
    );
    await eventually(
      () => server.requestsSince(0, { includeWatches: true }).length >= 250,
      "every watch to reach the server",
    );
    assert.equal((await get(connection, "/version")).status, 200, "a request beside them");
    assert.ok(server.connections.length >= 2, `${server.connections.length} connections`);
    watching.abort();
    await Promise.all(watches);
    assert.equal((await get(connection, "/version")).status, 200);
    await eventually(
      () => server.connections.length === 1,
      "the drained connections to close, the current one to stay",
    );
  } finally {
    watching.abort();
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

/** A TLS server of our own (HTTP/1.1 by ALPN) that answers every request with `answer`. */
async function rawServer(answer: string) {
  const ca = await createCertificateAuthority("raw");
  const serving = await issueCertificate(ca, {
    subject: "CN=raw",
    serverNames: { ips: ["127.0.0.1"] },
  });
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(
    { key: serving.keyPem, cert: serving.certPem, ALPNProtocols: ["http/1.1"] },
    (socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("data", () => socket.end(answer));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    target: { server: `https://127.0.0.1:${port}`, caPem: ca.certPem, deniedNetworks: [] },
    [Symbol.dispose]() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

Deno.test("an answer that is not HTTP as Response knows it (status 600, a NUL in a header) fails its request, nothing else", async () => {
  for (
    const answer of [
      "HTTP/1.1 600 Beyond\r\ncontent-length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nx-bad: a\u0000b\r\ncontent-length: 0\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
    ]
  ) {
    using server = await rawServer(answer);
    const connection = new PinnedConnection(server.target);
    try {
      await assert.rejects(get(connection, "/version"), `refused: ${JSON.stringify(answer)}`);
    } finally {
      connection.close();
    }
  }
  // A reason phrase in Latin-1 is fine.
  using server = await rawServer("HTTP/1.1 200 Tr\u00e8s bien\r\ncontent-length: 2\r\n\r\nok");
  const connection = new PinnedConnection(server.target);
  try {
    assert.equal(await (await get(connection, "/version")).text(), "ok");
  } finally {
    connection.close();
  }
});

Deno.test("a body whose request's signal aborts after the headers fails with the signal's reason", async () => {
  await using server = await SimulatedApiServer.start({ name: "late-abort" });
  const connection = new PinnedConnection(targetOf(server));
  try {
    const watch = await get(connection, "/api/v1/configmaps?watch=true", AbortSignal.timeout(300));
    await assert.rejects(
      watch.body!.pipeTo(new WritableStream()),
      (error: Error) => error.name === "TimeoutError",
    );
    assert.equal((await get(connection, "/version")).status, 200, "the connection lives on");
  } finally {
    connection.close();
  }
});

Deno.test("a connection still being made: each request gives up on its own signal; close() ends the wait", async () => {
  await using server = await SimulatedApiServer.start({ name: "slow-handshake" });
  await server.hang(true); // accepts, never completes the TLS handshake
  const connection = new PinnedConnection(targetOf(server));
  const short = get(connection, "/version", AbortSignal.timeout(200));
  const long = get(connection, "/version", AbortSignal.timeout(30_000));
  let longSettled = false;
  long.then(() => longSettled = true, () => longSettled = true);
  await assert.rejects(short, (error: Error) => error.name === "TimeoutError");
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(longSettled, false, "one request's timeout is not the other's");
  connection.close();
  await assert.rejects(long, /closed/);
  await server.hang(false);
});

Deno.test("a session told to go away is not pinged to death while its watch drains", async () => {
  await using server = await SimulatedApiServer.start({ name: "goaway-quiet" });
  const connection = new PinnedConnection(targetOf(server), {
    readIdleMs: 200,
    pingTimeoutMs: 200,
  });
  try {
    const watch = await get(connection, "/api/v1/configmaps?watch=true");
    const seen: string[] = [];
    const reading = watch.body!.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (text) => void seen.push(text) }),
    ).then(() => "ended", () => "failed");
    assert.equal(server.goAway(), 1);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // quiet: several idle checks
    server.store.create(server.typeOf("", "configmaps")!, {
      metadata: { name: "late", namespace: "default" },
    });
    await eventually(() => seen.join("").includes("late"), "the event on the draining watch");
    await watch.body?.cancel().catch(() => {});
    void reading;
  } finally {
    connection.close();
  }
});

Deno.test("through an HTTP proxy: the request that opened the connection ending does not end it", async () => {
  await using server = await SimulatedApiServer.start({ name: "proxied" });
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    client.once("data", (head) => {
      const [, authority] = /^CONNECT (\S+) /.exec(String(head)) ?? [];
      const [host, port] = (authority ?? "").split(":");
      const upstream = net.connect({ host, port: Number(port) }, () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        client.pipe(upstream);
        upstream.pipe(client);
      });
      sockets.add(upstream);
      upstream.on("error", () => client.destroy());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const connection = new PinnedConnection({ ...targetOf(server), proxyUrl });
  try {
    const first = new AbortController();
    assert.equal((await get(connection, "/version", first.signal)).status, 200);
    const [opened] = server.connections.map((c) => c.id);
    first.abort(); // e.g. a watch that ended: its signal fires after its connection was shared
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await get(connection, "/version")).status, 200);
    assert.deepEqual(
      server.connections.map((c) => c.id),
      [opened],
      "the first connection still carries requests",
    );
  } finally {
    connection.close();
    for (const socket of sockets) socket.destroy();
    proxy.close();
  }
});

Deno.test("through an HTTP proxy: CONNECT names the port (443 when the URL omits it), credentials go as UTF-8, and badly encoded ones are a clear error", async () => {
  const heads: string[] = [];
  const proxy = net.createServer((client) => {
    client.on("error", () => {});
    client.once("data", (head) => {
      heads.push(String(head));
      client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  const ca = await createCertificateAuthority("proxied");
  const through = (proxyUrl: string) =>
    new PinnedConnection({
      server: "https://api.example.test", // the port most managed clusters' kubeconfigs omit
      caPem: ca.certPem,
      proxyUrl,
      deniedNetworks: [],
    });
  try {
    const connection = through(`http://user:p%C3%A4ss@127.0.0.1:${port}`);
    await assert.rejects(get(connection, "/version"), /CONNECT answered 502/);
    connection.close();
    assert.match(
      heads[0]!,
      /^CONNECT api\.example\.test:443 HTTP\/1\.1\r\nHost: api\.example\.test:443\r\n/,
    );
    const basic = new TextEncoder().encode("user:p\u00e4ss").toBase64();
    assert.ok(heads[0]!.includes(`Proxy-Authorization: Basic ${basic}\r\n`), heads[0]!);

    const broken = through(`http://user:50%off@127.0.0.1:${port}`);
    const error = await get(broken, "/version").then(() => undefined, (e: unknown) => e);
    broken.close();
    assert.equal((error as { code?: string }).code, "InvalidKubeconfig", String(error));
    assert.doesNotMatch(String(error), /50%off/, "the password is not quoted");
    assert.equal(heads.length, 1, "nothing sent with it");
  } finally {
    proxy.close();
  }
});

Deno.test("a client key that cannot be parsed, or is another certificate's, is refused at once with a clear error", async () => {
  const ca = await createCertificateAuthority("keys");
  const mine = await issueCertificate(ca, { subject: "CN=mine" });
  const other = await issueCertificate(ca, { subject: "CN=other" });
  const target = (clientKeyPem: string): PinnedTarget => ({
    server: "https://127.0.0.1:1",
    caPem: ca.certPem,
    clientCertificatePem: mine.certPem,
    clientKeyPem,
    deniedNetworks: [],
  });
  const garbage = "-----BEGIN PRIVATE KEY-----\nAAAAbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
  for (
    const [key, why] of [
      [other.keyPem, /does not belong to the client certificate/],
      [garbage, /client key \(client-key-data\) cannot be parsed/],
    ] as const
  ) {
    assert.throws(
      () => new PinnedConnection(target(key)),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "InvalidKubeconfig");
        assert.match(error.message, why);
        assert.ok(!error.message.includes("AAAA") && !error.message.includes("BEGIN"));
        return true;
      },
    );
  }
  new PinnedConnection(target(mine.keyPem)).close(); // its own key: accepted
});
