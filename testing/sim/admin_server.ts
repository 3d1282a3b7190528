/**
 * The fault switchboard over HTTP: a plain-HTTP server on 127.0.0.1 whose URL carries a random
 * capability prefix (the URL is the secret). Everything here is also available programmatically on
 * {@linkcode SimulatedFleet} and {@linkcode SimulatedApiServer}.
 *
 * | Method and path (under the prefix) | Effect |
 * |---|---|
 * | `GET clusters` | every cluster: name, URL, listener state, faults, request count, open connections |
 * | `POST clusters` `{"name": "x"}` | start and register a workload cluster |
 * | `DELETE clusters/<name>` | deregister and stop it |
 * | `GET clusters/<name>/kubeconfig[?auth=token]` | its kubeconfig |
 * | `PATCH clusters/<name>/faults` (partial `FaultSettings`) | latency, slow body, error rate, silenced watches, 403/removed kinds |
 * | `POST clusters/<name>/<action>` | `stop`, `start`, `hang`, `unhang`, `drop-watches?mode=close\|reset\|reset-stream`, `goaway`, `rotate-credentials`, `rotate-ca`, `restart?mode=reset\|jump`, `flood?count=N&bytes=B&namespace=ns&kind=pods`, `clear-faults`, `infrastructure-ready?value=true\|false` |
 *
 * @module
 */

import type { FaultSettings, SimulatedApiServer } from "./api_server.ts";
import type { SimulatedFleet } from "./fleet.ts";

/**
 * A running admin server.
 *
 * @example Hanging a cluster over HTTP
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AdminServer, serveAdmin, SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const admin: AdminServer = serveAdmin(fleet);
 * try {
 *   const response = await fetch(`${admin.url}clusters/workload-1/hang`, { method: "POST" });
 *   await response.body?.cancel();
 *   assert.equal(fleet.cluster("workload-1").listenerState, "hung");
 * } finally {
 *   await admin.close();
 * }
 * ```
 */
export interface AdminServer {
  /** Base URL including the capability prefix, ending in `/`. */
  readonly url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function describe(server: SimulatedApiServer, role: "management" | "workload") {
  return {
    name: server.name,
    role,
    url: server.url,
    listener: server.listenerState,
    faults: server.faults,
    requests: server.requestCount,
    openWatches: server.openWatches,
    connections: server.connections,
    resourceVersion: server.store.resourceVersion,
  };
}

/** Options of {@linkcode serveAdmin}. */
export interface AdminOptions {
  /**
   * Clusters another simulator process serves, by name: the base URL of that process's switchboard.
   * Their requests are forwarded there; the management side (Cluster object, kubeconfig Secret,
   * infrastructure readiness) stays here.
   */
  remotes?: ReadonlyMap<string, string>;
}

/** A time limit for a call to another simulator process's switchboard. */
const REMOTE_TIMEOUT_MS = 60_000;

async function remoteJson(url: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS) });
  const body = await response.text();
  if (!response.ok) throw new Error(`${response.status} from the simulator serving it: ${body}`);
  return body ? JSON.parse(body) : undefined;
}

/** One cluster's request, carried to the process that serves it. */
async function forward(
  fleet: SimulatedFleet,
  admin: string,
  name: string,
  request: Request,
  action: string | undefined,
): Promise<Response> {
  const url = new URL(request.url);
  const target = `${admin}clusters/${encodeURIComponent(name)}${
    action ? `/${action}` : ""
  }${url.search}`;
  if (action === "infrastructure-ready" && request.method === "POST") {
    fleet.setInfrastructureReady(name, url.searchParams.get("value") !== "false");
    return json(await remoteJson(`${admin}clusters/${encodeURIComponent(name)}`));
  }
  if (action === undefined && request.method === "DELETE") await fleet.removeCluster(name);
  const body = request.method === "GET" || request.method === "HEAD" ? null : await request.text();
  const response = await fetch(target, {
    method: request.method,
    body,
    signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.ok && (action === "rotate-credentials" || action === "rotate-ca")) {
    const kubeconfig = await fetch(`${admin}clusters/${encodeURIComponent(name)}/kubeconfig`, {
      signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
    });
    fleet.updateExternalKubeconfig(name, await kubeconfig.text());
  }
  return new Response(text, {
    status: response.status,
    headers: { "content-type": response.headers.get("content-type") ?? "application/json" },
  });
}

/**
 * Serves the switchboard for `fleet` on an ephemeral loopback port.
 *
 * @example Listing the fleet and setting a fault
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveAdmin, SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 2 });
 * const admin = serveAdmin(fleet);
 * try {
 *   const clusters = await (await fetch(`${admin.url}clusters`)).json();
 *   assert.equal(clusters.length, 3, "the management cluster and two workload clusters");
 *   const response = await fetch(`${admin.url}clusters/workload-2/faults`, {
 *     method: "PATCH",
 *     body: JSON.stringify({ latencyMs: 250 }),
 *   });
 *   await response.body?.cancel();
 *   assert.equal(fleet.cluster("workload-2").faults.latencyMs, 250);
 * } finally {
 *   await admin.close();
 * }
 * ```
 *
 * @returns Its URL and a close function.
 */
export function serveAdmin(fleet: SimulatedFleet, options: AdminOptions = {}): AdminServer {
  const prefix = `/${crypto.randomUUID()}/`;
  const remotes = options.remotes ?? new Map<string, string>();
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (!url.pathname.startsWith(prefix)) return json({ error: "not found" }, 404);
    const parts = url.pathname.slice(prefix.length).split("/").filter(Boolean);
    try {
      if (parts[0] !== "clusters") return json({ error: "not found" }, 404);
      if (parts.length === 1) {
        if (request.method === "GET") {
          const elsewhere = await Promise.all(
            [...new Set(remotes.values())].map(async (admin) =>
              (await remoteJson(`${admin}clusters`) as { role: string }[])
                .filter((c) => c.role !== "management")
            ),
          );
          return json([
            describe(fleet.management, "management"),
            ...fleet.clusters.map((c) => describe(c, "workload")),
            ...elsewhere.flat(),
          ]);
        }
        if (request.method === "POST") {
          const body = await request.json() as { name?: string };
          if (!body.name) return json({ error: "name is required" }, 400);
          const server = await fleet.addCluster(body.name);
          return json(describe(server, "workload"), 201);
        }
        return json({ error: "method not allowed" }, 405);
      }
      const name = decodeURIComponent(parts[1]!);
      const remote = remotes.get(name);
      if (remote !== undefined) return await forward(fleet, remote, name, request, parts[2]);
      const server = name === "management" ? fleet.management : fleet.cluster(name);
      const action = parts[2];
      if (action === undefined) {
        if (request.method === "GET") return json(describe(server, "workload"));
        if (request.method === "DELETE") {
          await fleet.removeCluster(name);
          return json({ deleted: name });
        }
        return json({ error: "method not allowed" }, 405);
      }
      if (action === "kubeconfig" && request.method === "GET") {
        return new Response(
          server.kubeconfig(url.searchParams.get("auth") === "token" ? "token" : "certificate"),
          {
            headers: { "content-type": "application/yaml" },
          },
        );
      }
      if (action === "faults" && request.method === "PATCH") {
        server.setFaults(await request.json() as Partial<FaultSettings>);
        return json(describe(server, "workload"));
      }
      if (request.method !== "POST") return json({ error: "method not allowed" }, 405);
      const mode = url.searchParams.get("mode");
      switch (action) {
        case "stop":
          await server.stop();
          break;
        case "start":
          await server.start();
          break;
        case "hang":
          await server.hang(true);
          break;
        case "unhang":
          await server.hang(false);
          break;
        case "drop-watches":
          return json({
            dropped: server.dropWatches(
              mode === "reset" || mode === "reset-stream" ? mode : "close",
            ),
          });
        case "goaway":
          return json({ told: server.goAway() });
        case "rotate-credentials":
          await server.rotateCredentials();
          break;
        case "rotate-ca":
          await server.rotateCA();
          break;
        case "restart":
          await server.restart(mode === "jump" ? "jump" : "reset");
          break;
        case "flood": {
          const count = Number(url.searchParams.get("count") ?? "1000");
          const bytes = Number(url.searchParams.get("bytes") ?? "64");
          if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
            return json({ error: "count must be an integer from 1 to 1000000" }, 400);
          }
          if (!Number.isInteger(bytes) || bytes < 0 || bytes > 1_000_000) {
            return json({ error: "bytes must be an integer from 0 to 1000000" }, 400);
          }
          const names = await server.flood({
            count,
            payloadBytes: bytes,
            namespace: url.searchParams.get("namespace") ?? "default",
            kind: url.searchParams.get("kind") === "pods" ? "pods" : "configmaps",
          });
          return json({ created: names.length });
        }
        case "clear-faults":
          await server.clearFaults();
          break;
        case "infrastructure-ready":
          fleet.setInfrastructureReady(name, url.searchParams.get("value") !== "false");
          break;
        default:
          return json({ error: `unknown action "${action}"` }, 404);
      }
      return json(describe(server, "workload"));
    } catch (error) {
      const status = error instanceof RangeError ? 404 : 500;
      return json({ error: (error as Error).message }, status);
    }
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}${prefix}`,
    close: () => server.shutdown(),
  };
}
