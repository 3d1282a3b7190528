/**
 * A live status page of a {@linkcode ClusterCache}'s fleet, for the application's own server: which
 * clusters are connected, failing probes and since when, which kinds are stale or failing, which
 * clusters moved to a worker of their own and why, which replica serves what, and each cluster's
 * recent events. Import it from `@fleetkit/clustercache/status`: applications that do not mount it
 * load none of it.
 *
 * - `GET <mount>` the page (updates itself by server-sent events, no reload);
 * - `GET <mount>?stream` the events: a {@linkcode FleetSnapshot} as JSON every `intervalMs`;
 * - `GET <mount>?format=json` one snapshot, for scripts (`&cluster=<namespace>/<name>` for one).
 *
 * It shows no credential and no kubeconfig content: it is made of `describeCluster()` alone. It
 * needs no network beyond the application's server (no script, style or font from elsewhere).
 *
 * @example Mounting it beside `/metrics`
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectedCache } from "@fleetkit/clustercache/testing";
 * import { statusHandler } from "@fleetkit/clustercache/status";
 *
 * await using docs = await connectedCache();
 * const status = statusHandler(docs.cache, { title: "my-operator fleet" });
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
 *   new URL(request.url).pathname.startsWith("/status")
 *     ? status(request)
 *     : new Response("not found", { status: 404 }));
 * const json = await fetch(`http://127.0.0.1:${server.addr.port}/status?format=json`);
 * const fleet = await json.json();
 * assert.equal(fleet.totals.connected, 1);
 * ```
 *
 * @module
 */

import type { ClusterCache } from "../cluster_cache.ts";
import { type FleetSnapshot, FleetSnapshots } from "./fleet_snapshot.ts";
import { statusPage } from "./status_page.ts";

export type { ClusterRow, FleetSnapshot, KindRow } from "./fleet_snapshot.ts";

/** Options of {@linkcode statusHandler}. */
export interface StatusHandlerOptions {
  /** The page's title. Default "clustercache fleet". */
  title?: string;
  /** How often the page is sent a new snapshot, in ms. Default 1,000. */
  intervalMs?: number;
}

/**
 * A request handler serving the status page of `cache` (see the module's documentation).
 *
 * @throws {RangeError} For an interval that is not positive.
 */
export function statusHandler(
  cache: ClusterCache,
  options: StatusHandlerOptions = {},
): (request: Request) => Response {
  const intervalMs = options.intervalMs ?? 1_000;
  if (!(intervalMs > 0)) {
    throw new RangeError(`statusHandler intervalMs must be positive, got ${intervalMs}`);
  }
  const page = statusPage(options.title ?? "clustercache fleet");
  const snapshots = new FleetSnapshots(cache);
  return (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const params = new URL(request.url).searchParams;
    if (params.has("stream")) return stream(snapshots, intervalMs, request.signal);
    if (params.get("format") === "json") {
      const fleet = snapshots.take();
      const cluster = params.get("cluster");
      if (cluster === null) return json(fleet);
      const row = fleet.clusters.find((c) => c.cluster === cluster);
      return row ? json(row) : json({ error: `no cluster ${cluster}` }, 404);
    }
    return new Response(page, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        // Nothing from elsewhere: the page is all there is.
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      },
    });
  };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

/** Server-sent events: a snapshot now and every `intervalMs`, until the client goes away. */
function stream(snapshots: FleetSnapshots, intervalMs: number, signal: AbortSignal): Response {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  const stop = () => clearInterval(timer);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (fleet: FleetSnapshot) => {
        try {
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(fleet)}\n\n`));
        } catch {
          stop(); // the stream was closed
        }
      };
      send(snapshots.take());
      timer = setInterval(() => send(snapshots.take()), intervalMs);
      signal.addEventListener("abort", () => {
        stop();
        try {
          controller.close();
        } catch { /* closed already */ }
      }, { once: true });
    },
    cancel: stop,
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
