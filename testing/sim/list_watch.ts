/**
 * List and watch requests of the simulated API server: their parameters checked as kube-apiserver
 * checks them, lists (paged, from the watch cache or "etcd", as a Table) framed as typed lists, and
 * watch streams (with bookmarks, WatchList initial events and timeouts) framed as JSON lines.
 *
 * @module
 */

import type { Exchange } from "./exchange.ts";
import type { FaultSettings } from "./faults.ts";
import type { ObjectStore } from "./object_store.ts";
import { BUILTIN_TYPES, groupVersion, type ResourceType } from "./resource_types.ts";
import { type Lister, parseSelectors, toServedVersion } from "./rest.ts";
import { errors } from "./status.ts";
import { type Printer, WatchSession } from "./watch.ts";

/** What list and watch requests need of their server. */
export interface ListWatchServer {
  readonly store: ObjectStore;
  readonly lister: Lister;
  readonly options: {
    readonly watchList: boolean;
    readonly watchMinTimeoutSeconds: number;
    readonly watchTimeoutCapSeconds: number;
    readonly bookmarkIntervalMs: number;
    readonly maxWatchBufferBytes: number;
  };
  faults(): FaultSettings;
  /** `serving`, `stopped` or `hung`. */
  listenerState(): string;
  sendJson(exchange: Exchange, code: number, body: unknown): Promise<void>;
  watchStarted(session: WatchSession, exchange: Exchange): void;
  watchEnded(session: WatchSession): void;
  /** Whether this WatchList stream is to end before its initial-events bookmark (a fault). */
  endWatchListEarly(): "closed" | "expired" | undefined;
}

/** Answers list and watch requests for one server. */
export class ListWatch {
  readonly #server: ListWatchServer;

  constructor(server: ListWatchServer) {
    this.#server = server;
  }

  async list(
    exchange: Exchange,
    type: ResourceType,
    version: string,
    namespace: string | undefined,
    params: URLSearchParams,
    print: Printer | undefined,
  ): Promise<void> {
    const selectors = parseSelectors(
      type,
      params.get("labelSelector"),
      params.get("fieldSelector"),
    );
    const limitText = params.get("limit");
    const limit = limitText === null ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw errors.badRequest(`invalid limit "${limitText}"`);
    }
    const abort = new AbortController();
    exchange.onClose(() => abort.abort());
    const result = await this.#server.lister.list(type, {
      namespace,
      selectors,
      labelSelectorText: params.get("labelSelector") ?? "",
      fieldSelectorText: params.get("fieldSelector") ?? "",
      limit,
      continue: params.get("continue") ?? undefined,
      resourceVersion: params.get("resourceVersion") ?? undefined,
      resourceVersionMatch: params.get("resourceVersionMatch") ?? undefined,
    }, abort.signal);
    const metadata: Record<string, unknown> = { resourceVersion: result.resourceVersion };
    if (result.continue) metadata.continue = result.continue;
    if (result.remainingItemCount !== undefined) {
      metadata.remainingItemCount = result.remainingItemCount;
    }
    const items = result.items.map((o) => toServedVersion(type, o, version));
    if (print) return this.#server.sendJson(exchange, 200, print(items, metadata));
    // Typed (built-in) lists omit each item's apiVersion and kind, as kube-apiserver's do.
    const builtin = BUILTIN_TYPES.includes(type);
    return this.#server.sendJson(exchange, 200, {
      kind: type.listKind,
      apiVersion: groupVersion(type.group, version),
      metadata,
      items: builtin ? items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest) : items,
    });
  }

  async watch(
    exchange: Exchange,
    type: ResourceType,
    version: string,
    namespace: string | undefined,
    params: URLSearchParams,
    print: Printer | undefined,
  ): Promise<void> {
    const selectors = parseSelectors(
      type,
      params.get("labelSelector"),
      params.get("fieldSelector"),
    );
    const sendInitialEvents = params.get("sendInitialEvents");
    const match = params.get("resourceVersionMatch");
    const resourceVersion = params.get("resourceVersion") ?? undefined;
    // kube-apiserver validates ListOptions and answers 422 Invalid, kind ListOptions.meta.k8s.io.
    const invalid = (field: string, message: string) =>
      errors.invalid("ListOptions.meta.k8s.io", "", [{ field, message }]);
    if (sendInitialEvents !== null && !this.#server.options.watchList) {
      throw invalid(
        "sendInitialEvents",
        "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
      );
    }
    if (sendInitialEvents === "true" && match !== "NotOlderThan") {
      throw invalid(
        "resourceVersionMatch",
        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
      );
    }
    if (match !== null && sendInitialEvents === null) {
      throw invalid(
        "resourceVersionMatch",
        "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
      );
    }
    if (match !== null && match !== "NotOlderThan") {
      throw invalid("resourceVersionMatch", `Unsupported value: "${match}"`);
    }
    if (sendInitialEvents === "true" && resourceVersion && resourceVersion !== "0") {
      const abort = new AbortController();
      exchange.onClose(() => abort.abort());
      await this.#server.lister.waitForVersion(resourceVersion, abort.signal);
    }
    const timeoutText = params.get("timeoutSeconds");
    const min = this.#server.options.watchMinTimeoutSeconds;
    const requestedMs = timeoutText !== null && Number(timeoutText) > 0
      ? Number(timeoutText) * 1000
      : (min + Math.random() * min) * 1000;
    const timeoutMs = Math.min(requestedMs, this.#server.options.watchTimeoutCapSeconds * 1000);
    exchange.writeHead(200, {
      "content-type": "application/json",
      "cache-control": "no-cache, private",
    });
    exchange.flushHeaders();
    // A server shutting down gracefully ends its streams, WatchLists mid-way through their initial
    // events included: the client sees a clean end and no bookmark.
    const endEarly = sendInitialEvents === "true" ? this.#server.endWatchListEarly() : undefined;
    const session = new WatchSession(
      this.#server.store,
      {
        type,
        version,
        namespace,
        selectors,
        resourceVersion,
        allowBookmarks: params.get("allowWatchBookmarks") === "true" && !endEarly,
        sendInitialEvents: sendInitialEvents === "true",
        timeoutMs,
        print,
      },
      {
        write: (line) => exchange.write(line),
        end: () => exchange.end(),
        get bufferedBytes() {
          return exchange.bufferedBytes;
        },
      },
      {
        bookmarkIntervalMs: this.#server.options.bookmarkIntervalMs,
        maxBufferedBytes: this.#server.options.maxWatchBufferBytes,
        isSilenced: () =>
          this.#server.listenerState() !== "serving" || this.#server.faults().silenceWatches,
        isGarbled: () => this.#server.faults().garbleWatchLines,
        lagMs: () => this.#server.faults().watchLagMs,
      },
      () => this.#server.watchEnded(session),
    );
    this.#server.watchStarted(session, exchange);
    exchange.onClose(() => session.detach());
    session.start();
    if (endEarly === "expired") session.expire();
    else if (endEarly) session.close();
  }
}
