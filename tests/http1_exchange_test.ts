/** HTTP/1.1 framing for servers that do not speak HTTP/2: heads and chunked bodies, cut anywhere. */
import assert from "node:assert/strict";
import { ChunkedDecoder, parseHead } from "../workers/http1_exchange.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (pieces: Uint8Array[]) =>
  new TextDecoder().decode(
    pieces.reduce((all, p) => {
      const joined = new Uint8Array(all.length + p.length);
      joined.set(all);
      joined.set(p, all.length);
      return joined;
    }, new Uint8Array(0)),
  );

const WIRE =
  "4\r\nWiki\r\n6;name=value\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
const BODY = "Wikipedia in \r\n\r\nchunks.";

Deno.test("chunked bodies decode the same however the bytes are cut", () => {
  for (const size of [1, 2, 3, 7, 64]) {
    const decoder = new ChunkedDecoder();
    const body: Uint8Array[] = [];
    const wire = bytes(WIRE);
    for (let i = 0; i < wire.length; i += size) {
      assert.equal(decoder.done, false, `ended early, cut every ${size} bytes`);
      const out = decoder.push(wire.subarray(i, i + size));
      body.push(...out.body.map((b) => b.slice()));
    }
    assert.equal(text(body), BODY, `cut every ${size} bytes`);
    assert.equal(decoder.done, true);
  }
});

Deno.test("bytes after the last chunk are not the body's", () => {
  const decoder = new ChunkedDecoder();
  const wire = bytes("3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK");
  const { body, used } = decoder.push(wire);
  assert.equal(text(body), "abc");
  assert.equal(used, wire.length - "HTTP/1.1 200 OK".length);
  assert.equal(decoder.done, true);
});

Deno.test("a malformed chunk is an error, not a short body", () => {
  assert.throws(() => new ChunkedDecoder().push(bytes("zz\r\nabc\r\n")), /chunk size/);
  assert.throws(() => new ChunkedDecoder().push(bytes("3\r\nabcd\r\n")), /CRLF/);
  assert.throws(() => new ChunkedDecoder().push(bytes("1".repeat(5000))), /too long/);
});

Deno.test("a response head: status, reason, repeated headers; anything else is refused", () => {
  const head = parseHead(
    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nSet-Cookie: a\r\nSet-Cookie: b",
  );
  assert.equal(head.status, 429);
  assert.equal(head.statusText, "Too Many Requests");
  assert.equal(head.headers.get("retry-after"), "3");
  assert.equal(head.headers.get("set-cookie"), "a, b");
  assert.equal(parseHead("HTTP/1.0 204").status, 204);
  assert.throws(() => parseHead("SSH-2.0-OpenSSH"), /not HTTP/);
  assert.throws(() => parseHead("HTTP/1.1 200 OK\r\nno colon"), /malformed header/);
});
