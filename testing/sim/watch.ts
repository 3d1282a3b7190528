/**
 * One watch stream of a simulated API server, with kube-apiserver's semantics: synthetic ADDED events
 * for the current state (or `sendInitialEvents` with its end-of-initial-events bookmark), replay from
 * a resourceVersion out of bounded history or a 410 Expired ERROR event, selector transitions
 * (an object that stops matching arrives as DELETED), opt-in periodic bookmarks, a server-side
 * timeout, and closing watchers that fall too far behind.
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";
import type { ObjectStore, StoreEvent } from "./object_store.ts";
import { groupVersion, resourceId, type ResourceType } from "./resource_types.ts";
import { matches, type Selectors, toServedVersion } from "./rest.ts";

/** Where a watch writes: an HTTP response, seen through the little the stream needs. */
export interface WatchSink {
  /** Writes one line (a JSON event plus newline). */
  write(line: string): void;
  /** Ends the response cleanly (terminating chunk). */
  end(): void;
  /** Bytes written but not yet taken by the client. */
  readonly bufferedBytes: number;
}

/** What a watch request asked for. */
export interface WatchRequest {
  type: ResourceType;
  version: string;
  namespace?: string | undefined;
  selectors: Selectors;
  /** `undefined`, `""`, `"0"` or a version. */
  resourceVersion?: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  /** The server ends the stream after this long. */
  timeoutMs: number;
  /** Prints each event's object as a one-row Table (kubectl get -w); `undefined`: objects as they are. */
  print: Printer | undefined;
}

/** Server-side printing of objects (a Table, see `kubectl/table.ts`), with the list's metadata. */
export type Printer = (objects: KubeObject[], metadata: Record<string, unknown>) => unknown;

/** Server-wide knobs of watch streams. */
export interface WatchSettings {
  bookmarkIntervalMs: number;
  maxBufferedBytes: number;
  /** Read before every write: a silenced or hung server writes nothing, ever again, on this stream. */
  isSilenced: () => boolean;
  /** Read before every write: a garbled stream sends a line that is not JSON first. */
  isGarbled?: () => boolean;
  /** How long events trail the writes they follow (ms; 0: at once). */
  lagMs?: () => number;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED";

/** A live watch stream. */
export class WatchSession {
  /** What the client asked for. */
  readonly request: WatchRequest;
  // Lines of one turn go out in one write (one TLS record), as kube-apiserver's buffered writer does.
  #lines: string[] = [];
  #flushQueued = false;
  readonly #store: ObjectStore;
  readonly #sink: WatchSink;
  readonly #settings: WatchSettings;
  readonly #resource: string;
  #unsubscribe: (() => void) | undefined;
  #timers: ReturnType<typeof setTimeout>[] = [];
  /** Events waiting out the watch lag fault. */
  readonly #lagging = new Set<ReturnType<typeof setTimeout>>();
  #lastSentVersion = 0;
  #state: "open" | "zombie" | "closed" = "open";
  readonly #onClosed: () => void;

  /**
   * @param onClosed Called once when the session ends (so the server can forget it).
   */
  constructor(
    store: ObjectStore,
    request: WatchRequest,
    sink: WatchSink,
    settings: WatchSettings,
    onClosed: () => void,
  ) {
    this.#store = store;
    this.request = request;
    this.#sink = sink;
    this.#settings = settings;
    this.#resource = resourceId(request.type);
    this.#onClosed = onClosed;
  }

  /** Whether the stream is silent for good (a hang or a silenced-watch fault caught it). */
  get zombie(): boolean {
    return this.#state === "zombie";
  }

  /** The kind this stream watches. */
  get resource(): string {
    return this.#resource;
  }

  /**
   * Sends the initial events and subscribes to changes, in one synchronous step so nothing between
   * the two is missed.
   */
  start(): void {
    const rv = this.request.resourceVersion ?? "";
    if (rv === "" || rv === "0") {
      const current = this.#store.list(this.request.type, this.request.namespace)
        .filter((o) => matches(o, this.request.namespace, this.request.selectors))
        .sort((a, b) => Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion));
      for (const object of current) this.#send("ADDED", object);
      this.#lastSentVersion = this.#store.resourceVersion;
      if (this.request.sendInitialEvents && this.request.allowBookmarks) {
        this.#bookmark(true);
      }
    } else {
      const from = Number(rv);
      if (this.request.sendInitialEvents) {
        // NotOlderThan: the current state is newer than `from` (the server checked), so send it.
        const current = this.#store.list(this.request.type, this.request.namespace)
          .filter((o) => matches(o, this.request.namespace, this.request.selectors));
        for (const object of current) this.#send("ADDED", object);
        this.#lastSentVersion = this.#store.resourceVersion;
        if (this.request.allowBookmarks) this.#bookmark(true);
      } else {
        const events = Number.isFinite(from)
          ? this.#store.eventsSince(this.request.type, from)
          : "expired";
        if (events === "expired") {
          this.#error(
            410,
            "Expired",
            `too old resource version: ${rv} (${this.#store.resourceVersion})`,
          );
          this.close();
          return;
        }
        this.#lastSentVersion = Number.isFinite(from) ? from : 0;
        for (const event of events) this.#deliver(event);
      }
    }
    if (this.#state !== "open") return;
    this.#unsubscribe = this.#store.subscribe((event) => {
      const lag = this.#settings.lagMs?.() ?? 0;
      // Same delay for every event: timers fire in order, so the stream stays in order.
      if (lag === 0) return this.#deliver(event);
      const timer = setTimeout(() => {
        this.#lagging.delete(timer);
        this.#deliver(event);
      }, lag);
      this.#lagging.add(timer);
    });
    this.#timers.push(setTimeout(() => this.close(), this.request.timeoutMs));
    if (this.request.allowBookmarks) {
      const jitter = Math.floor(Math.random() * this.#settings.bookmarkIntervalMs * 0.1);
      this.#timers.push(
        setInterval(() => this.#bookmark(false), this.#settings.bookmarkIntervalMs + jitter),
      );
    }
  }

  #deliver(event: StoreEvent): void {
    if (event.resource !== this.#resource || this.#state !== "open") return;
    const { namespace, selectors } = this.request;
    const now = matches(event.object, namespace, selectors);
    let type: EventType | undefined;
    let object = event.object;
    if (event.type === "ADDED") {
      if (now) type = "ADDED";
    } else if (event.type === "DELETED") {
      if (matches(event.previous ?? event.object, namespace, selectors)) type = "DELETED";
    } else {
      const before = event.previous !== undefined && matches(event.previous, namespace, selectors);
      if (now && before) type = "MODIFIED";
      else if (now) type = "ADDED";
      else if (before) {
        type = "DELETED";
        object = {
          ...event.previous!,
          metadata: { ...event.previous!.metadata, resourceVersion: String(event.resourceVersion) },
        };
      }
    }
    if (type) this.#send(type, object, event.resourceVersion);
  }

  #writable(): boolean {
    if (this.#state !== "open") return false;
    if (this.#settings.isSilenced()) {
      this.#zombify();
      return false;
    }
    return true;
  }

  #write(line: string): void {
    this.#lines.push(line);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#lines.length === 0 || this.#state !== "open") return;
    if (this.#settings.isGarbled?.()) this.#lines.unshift("{this is not json\n");
    this.#sink.write(this.#lines.join(""));
    this.#lines = [];
  }

  #send(type: EventType, stored: KubeObject, version?: number): void {
    if (!this.#writable()) return;
    const object = toServedVersion(this.request.type, stored, this.request.version);
    const payload = this.request.print
      ? this.request.print([object], { resourceVersion: object.metadata?.resourceVersion })
      : object;
    this.#write(JSON.stringify({ type, object: payload }) + "\n");
    this.#lastSentVersion = Math.max(
      this.#lastSentVersion,
      version ?? Number(object.metadata?.resourceVersion ?? 0),
    );
    if (this.#sink.bufferedBytes > this.#settings.maxBufferedBytes) {
      // kube-apiserver's cacher drops a watcher that cannot keep up, without an ERROR event.
      this.close();
    }
  }

  #bookmark(initialEventsEnd: boolean): void {
    if (!this.#writable()) return;
    const version = Math.max(this.#lastSentVersion, this.#store.resourceVersion);
    const metadata: Record<string, unknown> = { resourceVersion: String(version) };
    if (initialEventsEnd) metadata.annotations = { "k8s.io/initial-events-end": "true" };
    this.#lastSentVersion = version;
    this.#write(
      JSON.stringify({
        type: "BOOKMARK",
        object: {
          kind: this.request.type.kind,
          apiVersion: groupVersion(this.request.type.group, this.request.version),
          metadata,
        },
      }) + "\n",
    );
  }

  #error(code: number, reason: string, message: string): void {
    if (!this.#writable()) return;
    this.#write(
      JSON.stringify({
        type: "ERROR",
        object: {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message,
          reason,
          code,
        },
      }) + "\n",
    );
  }

  #stopTimers(): void {
    for (const timer of [...this.#timers, ...this.#lagging]) clearTimeout(timer);
    this.#timers = [];
    this.#lagging.clear();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #zombify(): void {
    if (this.#state !== "open") return;
    this.#state = "zombie";
    this.#stopTimers();
  }

  /** Ends the stream with a 410 Expired status, as one whose history moved on. */
  expire(): void {
    this.#error(410, "Expired", `too old resource version: ${this.#store.resourceVersion}`);
    this.close();
  }

  /** Ends the stream cleanly (a timeout, a dropped slow watcher, a removed kind, an admin). */
  close(): void {
    if (this.#state === "closed") return;
    if (this.#state === "open") this.#flush();
    this.#state = "closed";
    this.#stopTimers();
    this.#sink.end();
    this.#onClosed();
  }

  /** Forgets the stream after its connection went away (nothing more to write). */
  detach(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#stopTimers();
    this.#onClosed();
  }
}
