/**
 * One HTTP/1.1 request and its response on a connection of its own (worker side), for API servers
 * that do not speak HTTP/2 (behind a proxy that does not, for example): the request is written on
 * the pinned TLS socket with `Connection: close`, the response read from it, its body framed by
 * `Content-Length`, chunked transfer coding or the connection's end. `node:http` cannot be used
 * here: given a socket of ours, Deno's keeps the connection open after the response.
 *
 * @module
 */

import type * as tls from "node:tls";

/** Largest status line and headers accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Statuses whose response has no body (`new Response` refuses one). */
export const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** A response's head, as read from the wire. */
export interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
}

/**
 * Parses a status line and headers (without the blank line that ends them).
 *
 * @throws {Error} For anything but an HTTP/1.x status line and `name: value` headers.
 */
export function parseHead(text: string): ResponseHead {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] ([1-5]\d\d)(?: (.*))?$/.exec(statusLine);
  if (!match) throw new Error("the server's answer is not HTTP/1.1");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error("the server sent a malformed header");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(match[1]), statusText: match[2] ?? "", headers };
}

/**
 * Decodes chunked transfer coding fed in pieces of any size (RFC 9112 §7.1); chunk extensions and
 * trailers are read and dropped.
 */
export class ChunkedDecoder {
  #state: "size" | "data" | "data-end" | "trailers" | "done" = "size";
  #line = "";
  #left = 0;

  /** Whether the last chunk and the trailers have been read. */
  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Feeds bytes; returns the body bytes they carried and how many input bytes were used (the
   * rest, after the end, is not the body's).
   *
   * @throws {Error} For a malformed chunk size or a missing CRLF.
   */
  push(input: Uint8Array): { body: Uint8Array[]; used: number } {
    const body: Uint8Array[] = [];
    let i = 0;
    while (i < input.length && this.#state !== "done") {
      if (this.#state === "data") {
        const take = Math.min(this.#left, input.length - i);
        body.push(input.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = "data-end";
        continue;
      }
      // The other states read lines.
      const byte = input[i++]!;
      if (byte !== 0x0a) {
        this.#line += String.fromCharCode(byte);
        if (this.#line.length > 4096) throw new Error("a chunk line is too long");
        continue;
      }
      const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
      this.#line = "";
      if (this.#state === "data-end") {
        if (line !== "") throw new Error("a chunk did not end with CRLF");
        this.#state = "size";
      } else if (this.#state === "size") {
        const size = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?$/.exec(line.trim())?.[1];
        if (size === undefined) throw new Error("a malformed chunk size");
        this.#left = parseInt(size, 16);
        this.#state = this.#left === 0 ? "trailers" : "data";
      } else if (line === "") {
        this.#state = "done"; // trailers end with an empty line
      }
    }
    return { body, used: i };
  }
}

/**
 * Sends `request` on `socket` and resolves with the response once its head has come; the body
 * streams with backpressure (the socket is paused while the reader lags) and errors if the
 * connection ends before the body does. The socket is destroyed when the body ends, errors or is
 * cancelled.
 */
export function http1Exchange(
  socket: tls.TLSSocket,
  request: {
    method: string;
    path: string;
    host: string;
    headers: Record<string, string>;
    body?: string;
    signal: AbortSignal;
  },
): Promise<Response> {
  const { signal } = request;
  return new Promise<Response>((resolve, reject) => {
    let head: Uint8Array = new Uint8Array(0);
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let finished = false;
    let framing: { kind: "length"; left: number } | { kind: "chunked"; decoder: ChunkedDecoder } | {
      kind: "close";
    } | undefined;
    const finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      if (!controller) reject(error ?? new Error("the connection closed before a response"));
      else if (error) controller.error(error);
      else controller.close();
    };
    const onAbort = () => finish(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });

    const deliver = (bytes: Uint8Array) => {
      if (finished || !framing || !controller) return;
      if (framing.kind === "length") {
        const take = bytes.subarray(0, framing.left);
        framing.left -= take.length;
        if (take.length > 0) controller.enqueue(take);
        if (framing.left === 0) return finish();
      } else if (framing.kind === "chunked") {
        let decoded;
        try {
          decoded = framing.decoder.push(bytes);
        } catch (error) {
          return finish(error);
        }
        for (const piece of decoded.body) if (piece.length > 0) controller.enqueue(piece);
        if (framing.decoder.done) return finish();
      } else if (bytes.length > 0) controller.enqueue(bytes);
      if ((controller.desiredSize ?? 0) <= 0) socket.pause();
    };

    const onHead = (bytes: Uint8Array) => {
      const joined = new Uint8Array(head.length + bytes.length);
      joined.set(head);
      joined.set(bytes, head.length);
      const end = indexOfBlankLine(joined);
      if (end < 0) {
        if (joined.length > MAX_HEAD_BYTES) finish(new Error("the response head is too large"));
        head = joined;
        return;
      }
      let parsed: ResponseHead;
      try {
        parsed = parseHead(latin1(joined.subarray(0, end)));
      } catch (error) {
        return finish(error);
      }
      if (parsed.status === 101) {
        return finish(new Error("the server switched protocols, which was not asked for"));
      }
      if (parsed.status < 200) {
        head = new Uint8Array(0); // an interim response: the real one follows
        return onHead(joined.subarray(end + 4));
      }
      const rest = joined.subarray(end + 4);
      const length = parsed.headers.get("content-length");
      const chunked = /(^|,)\s*chunked\s*$/i.test(parsed.headers.get("transfer-encoding") ?? "");
      const empty = NULL_BODY.has(parsed.status) || request.method === "HEAD" ||
        (!chunked && length !== null && Number(length) === 0);
      if (empty) {
        controller = undefined;
        finished = true;
        signal.removeEventListener("abort", onAbort);
        socket.destroy();
        try {
          resolve(new Response(null, parsed));
        } catch (error) {
          reject(error);
        }
        return;
      }
      framing = chunked
        ? { kind: "chunked", decoder: new ChunkedDecoder() }
        : length !== null && /^\d+$/.test(length.trim())
        ? { kind: "length", left: Number(length) }
        : { kind: "close" };
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          controller = c;
        },
        pull() {
          socket.resume();
        },
        cancel() {
          finished = true;
          signal.removeEventListener("abort", onAbort);
          socket.destroy();
        },
      }, new CountQueuingStrategy({ highWaterMark: 8 }));
      try {
        resolve(new Response(body, parsed));
      } catch (error) {
        return finish(error);
      }
      deliver(rest);
    };

    socket.on("data", (chunk: Uint8Array) => {
      if (framing) deliver(chunk);
      else onHead(chunk);
    });
    socket.once("end", () => {
      if (framing?.kind === "close") finish();
      else finish(new Error("the connection closed before the response ended"));
    });
    socket.once(
      "close",
      () => finish(new Error("the connection closed before the response ended")),
    );
    socket.on("error", (error: Error) => finish(error));

    // Our own values, but a line break in one would start another header (or request).
    const unsafe =
      [request.method, request.path, request.host, ...Object.entries(request.headers).flat()]
        .some((text) => /[\r\n]/.test(text)) || /\s/.test(request.path);
    if (unsafe) return finish(new Error("a request line or header value contains a line break"));
    const lines = [
      `${request.method} ${request.path} HTTP/1.1`,
      `host: ${request.host}`,
      "connection: close",
      ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
    ];
    const payload = request.body === undefined ? undefined : new TextEncoder().encode(request.body);
    if (payload) lines.push(`content-length: ${payload.length}`);
    socket.write(lines.join("\r\n") + "\r\n\r\n");
    if (payload) socket.write(payload);
  });
}

/** Bytes as ISO-8859-1 text, one character each: header bytes are not UTF-8. */
function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}

function indexOfBlankLine(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}
