/**
 * One simulated workload (or management) cluster's API server: its credentials, its fault
 * switchboard, and the router that serves discovery, health, OpenAPI, reads and writes over an
 * {@linkcode ObjectStore}. Its parts live beside it: the TLS listener (`listener.ts`),
 * authentication (`auth.ts`), faults (`faults.ts`), list and watch framing (`list_watch.ts`) and
 * load (`load_fixtures.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { parse as parseYaml } from "yaml";
import type { KubeObject } from "../../src/shared/kube_object.ts";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  type IssuedCertificate,
} from "./certs.ts";
import { apiGroup, apiGroupList, apiResourceList, apiVersions, rootPaths } from "./discovery.ts";
import { renderKubeconfig } from "./kubeconfig.ts";
import { INITIAL_NAMESPACES, ObjectStore } from "./object_store.ts";
import {
  BUILTIN_TYPES,
  NAMESPACE_TYPE,
  resourceId,
  type ResourceType,
  REVIEW_TYPES,
} from "./resource_types.ts";
import {
  admit,
  Lister,
  parseBody,
  parseSelectors,
  patch,
  type PatchType,
  patchTypeOf,
  toServedVersion,
} from "./rest.ts";
import { errors, failure, StatusError } from "./status.ts";
import { applyJsonPatch, type JsonValue } from "./json_patch.ts";
import type { Printer, WatchSession } from "./watch.ts";
import { OpenApi } from "./openapi.ts";
import { PROTOBUF_MEDIA, TABLE_MEDIA } from "./media_types.ts";
import { type RequestInfo, requestInfo } from "./request_info.ts";
import type { Exchange } from "./exchange.ts";
import { type ListenerState, type OpenConnection, TlsListener } from "./listener.ts";
import { sleep } from "../../src/shared/backoff.ts";
import { DEFAULT_FAULTS, type FaultSettings, injectError } from "./faults.ts";
import { flood } from "./load_fixtures.ts";
import { ListWatch } from "./list_watch.ts";
import { authenticate, randomToken, type UserInfo } from "./auth.ts";
import type { StoreWriteOptions } from "./object_store.ts";

export type { FaultSettings } from "./faults.ts";
export { realisticPod } from "./load_fixtures.ts";

/**
 * Options of {@linkcode SimulatedApiServer.start}.
 *
 * @example A server whose history is short, to provoke 410 Expired
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   SimulatedApiServer,
 *   type SimulatedApiServerOptions,
 * } from "@fleetkit/clustercache/testing";
 *
 * const options: SimulatedApiServerOptions = {
 *   name: "tiny-history",
 *   historySize: 10,
 *   bookmarkIntervalMs: 1_000,
 *   watchTimeoutCapSeconds: 30,
 * };
 * await using server = await SimulatedApiServer.start(options);
 * const configmaps = server.typeOf("", "configmaps")!;
 * for (let i = 0; i < 20; i++) {
 *   server.store.create(configmaps, { metadata: { namespace: "default", name: `cm-${i}` } });
 * }
 * assert.ok(server.store.oldestReachableVersion > 1, "watching from version 1 now gives 410");
 * ```
 */
export interface SimulatedApiServerOptions {
  /** The cluster's name (certificate names, kubeconfig names). */
  name: string;
  /** Kinds served besides the built-ins (e.g. Cluster API's `Cluster`). */
  extraTypes?: readonly ResourceType[];
  /** Events kept for watches and continuations; older versions get 410 Expired. Default 1000. */
  historySize?: number;
  /**
   * Lower bound of the server-chosen watch timeout when a client sends no `timeoutSeconds`; the
   * timeout is random in [min, 2·min] like kube-apiserver's. Default 1800 s.
   */
  watchMinTimeoutSeconds?: number;
  /** Interval of bookmarks on watches that allow them. Default 60 s. */
  bookmarkIntervalMs?: number;
  /** A watcher with more unsent bytes than this is closed (a slow consumer). Default 16 MiB. */
  maxWatchBufferBytes?: number;
  /** How long a request for a future resourceVersion waits before 504. Default 3 s. */
  tooLargeResourceVersionWaitMs?: number;
  /** Lifetime of continue tokens. Default 5 min. */
  continueTtlMs?: number;
  /** Largest accepted request body. Default 3 MiB. */
  maxRequestBodyBytes?: number;
  /** Caps the `timeoutSeconds` clients ask for (a server-side policy), so routine timeouts happen. */
  watchTimeoutCapSeconds?: number;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /**
   * Whether watches may stream lists (`sendInitialEvents`, WatchList). `false` answers them 422 as
   * a kube-apiserver with the WatchList feature gate off does. Default `true`.
   */
  watchList?: boolean;
  /**
   * Whether Deployments and ReplicaSets report a finished rollout (status replicas, conditions and
   * `observedGeneration`) right after each spec change, as if kube-controller-manager ran and every
   * Pod were ready at once. Default `true`.
   */
  rollouts?: boolean;
  /**
   * Whether ALPN offers HTTP/2. `false` serves HTTP/1.1 alone, as a server behind a proxy that
   * does not speak HTTP/2 does. Default `true`.
   */
  http2?: boolean;
}

/**
 * The credentials a client needs for a simulated cluster.
 *
 * @example Calling the simulator with Deno's fetch and the admin client certificate
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClusterCredentials, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "edge-1" });
 * const credentials: ClusterCredentials = server.credentials();
 * using client = Deno.createHttpClient({
 *   caCerts: [credentials.caPem],
 *   cert: credentials.clientCertificatePem,
 *   key: credentials.clientKeyPem,
 * });
 * const response = await fetch(`${server.url}/api/v1/namespaces`, { client });
 * const namespaces = await response.json();
 * assert.ok(namespaces.items.some((n: { metadata: { name: string } }) => n.metadata.name === "default"));
 * ```
 */
export interface ClusterCredentials {
  /** The cluster's CA (PEM). */
  readonly caPem: string;
  /** The admin client certificate (PEM). */
  readonly clientCertificatePem: string;
  /** Its private key (PEM). */
  readonly clientKeyPem: string;
  /** The admin bearer token. */
  readonly token: string;
}

/**
 * One request, as remembered for tests that check request rates.
 *
 * @example Counting what a client sent
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RequestRecord, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "counted" });
 * const since = Date.now();
 * const { caPem, token } = server.credentials();
 * using client = Deno.createHttpClient({ caCerts: [caPem] });
 * const headers = { authorization: `Bearer ${token}` };
 * for (let i = 0; i < 3; i++) {
 *   await (await fetch(`${server.url}/api/v1/namespaces`, { client, headers })).body?.cancel();
 * }
 * const lists: RequestRecord[] = server.requestsSince(since)
 *   .filter((r) => r.method === "GET" && r.path === "/api/v1/namespaces");
 * assert.equal(lists.length, 3);
 * ```
 */
export interface RequestRecord {
  /** When it arrived (epoch ms). */
  readonly time: number;
  /** HTTP method. */
  readonly method: string;
  /** URL path (no query). */
  readonly path: string;
  /** Whether it was a watch. */
  readonly watch: boolean;
  /** The query parameters. */
  readonly query: Readonly<Record<string, string>>;
  /** Which connection carried it ({@linkcode SimulatedApiServer.connections} ids). */
  readonly connection: number;
  /** The connection's protocol, as ALPN chose it. */
  readonly protocol: "h2" | "http/1.1";
}

export type { ListenerState, OpenConnection };

type KubectlParts = typeof import("./kubectl/mod.ts");
let kubectlParts: Promise<KubectlParts> | undefined;

/** Whether a simulated server of this process has needed kubectl's parts yet (for tests). */
export function kubectlPartsLoaded(): boolean {
  return kubectlParts !== undefined;
}

/** A resource request, read and checked against the kinds served. */
interface ResourceRequest {
  exchange: Exchange;
  user: UserInfo;
  type: ResourceType;
  version: string;
  /** `undefined` for a cluster-scoped kind, or a namespaced one across namespaces. */
  namespace: string | undefined;
  /** The object's name in the path. */
  name: string | undefined;
  params: URLSearchParams;
  /** Server-side printing, when kubectl asked for a Table. */
  print: Printer | undefined;
  writeOptions: StoreWriteOptions;
}
/** Removes `spec.containers[0].x` from `object`. */
function removeField(object: KubeObject, path: string): void {
  const steps = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let at: unknown = object;
  for (const step of steps.slice(0, -1)) {
    at = (at as Record<string, unknown> | undefined)?.[step];
    if (!at || typeof at !== "object") return;
  }
  delete (at as Record<string, unknown>)[steps.at(-1)!];
}

/**
 * A simulated kube-apiserver for one cluster.
 *
 * @example Seeding objects, then watching a client see them
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "edge-1" });
 * const pods = server.typeOf("", "pods")!;
 * server.store.create(pods, {
 *   metadata: { namespace: "default", name: "web" },
 *   spec: { containers: [{ name: "web", image: "nginx" }] },
 * });
 * const { caPem, token } = server.credentials();
 * using client = Deno.createHttpClient({ caCerts: [caPem] });
 * const response = await fetch(`${server.url}/api/v1/namespaces/default/pods/web`, {
 *   client,
 *   headers: { authorization: `Bearer ${token}` },
 * });
 * assert.equal((await response.json()).metadata.name, "web");
 * // Unauthenticated requests get a 401 Status, as from kube-apiserver.
 * const anonymous = await fetch(`${server.url}/api/v1/pods`, { client });
 * assert.equal(anonymous.status, 401);
 * await anonymous.body?.cancel();
 * ```
 */
export class SimulatedApiServer {
  /** The cluster's name. */
  readonly name: string;
  /** The cluster's objects; write to it directly to seed or change state without HTTP. */
  readonly store: ObjectStore;
  /** Requests received (latest 5,000), for tests that assert request rates. */
  readonly requests: RequestRecord[] = [];
  #requestCount = 0;
  readonly #options: Required<
    Omit<SimulatedApiServerOptions, "extraTypes" | "port" | "rollouts" | "http2">
  >;
  readonly #types: ResourceType[];
  readonly #lister: Lister;
  #port = 0;
  readonly #listener: TlsListener;
  readonly #openApi = new OpenApi(() => this.#servedTypes());
  readonly #watches = new Set<WatchSession>();
  #ca!: CertificateAuthority;
  #serving!: IssuedCertificate;
  #servingNames = { dns: ["localhost"], ips: ["127.0.0.1"] };
  #admin!: IssuedCertificate;
  #token = "";
  readonly #validFingerprints = new Set<string>();
  readonly #validTokens = new Set<string>();
  #faults: FaultSettings = structuredClone(DEFAULT_FAULTS);
  #generation = 0;
  readonly #credentialListeners = new Set<() => void>();
  #closed = false;
  readonly #lifetime = new AbortController();
  /** How the next WatchList streams end before their initial-events bookmark, in order. */
  #watchListEndings: ("closed" | "expired")[] = [];
  /** Requests to leave unanswered (or to fail with `code`): what they match, and how many more. */
  readonly #singled: {
    method: string | undefined;
    path: RegExp;
    left: number;
    code?: number;
  }[] = [];

  private constructor(options: SimulatedApiServerOptions) {
    this.name = options.name;
    this.#listener = new TlsListener(
      (exchange) => void this.#onRequest(exchange),
      options.http2 ?? true,
    );
    this.#options = {
      name: options.name,
      historySize: options.historySize ?? 1000,
      watchMinTimeoutSeconds: options.watchMinTimeoutSeconds ?? 1800,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
      maxWatchBufferBytes: options.maxWatchBufferBytes ?? 16 * 1024 * 1024,
      tooLargeResourceVersionWaitMs: options.tooLargeResourceVersionWaitMs ?? 3000,
      continueTtlMs: options.continueTtlMs ?? 5 * 60_000,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? 3 * 1024 * 1024,
      watchTimeoutCapSeconds: options.watchTimeoutCapSeconds ?? Infinity,
      watchList: options.watchList ?? true,
    };
    this.#types = [...BUILTIN_TYPES, ...REVIEW_TYPES, ...(options.extraTypes ?? [])];
    this.store = new ObjectStore(this.#options.historySize);
    this.#lister = new Lister(
      this.store,
      this.#options.tooLargeResourceVersionWaitMs,
      this.#options.continueTtlMs,
    );
    for (const namespace of INITIAL_NAMESPACES) {
      this.store.create(NAMESPACE_TYPE, { metadata: { name: namespace } });
    }
    if (options.rollouts ?? true) {
      // kube-controller-manager's part, started (with kubectl's parts) on the first Deployment or
      // ReplicaSet written: it settles those written before it too.
      const unsubscribe = this.store.subscribe((event) => {
        if (event.resource !== "apps/deployments" && event.resource !== "apps/replicasets") return;
        unsubscribe();
        this.#kubectl().then(({ completeRollouts }) => {
          if (!this.#closed) this.#stopRollouts = completeRollouts(this.store, this.#types);
        }).catch((error) =>
          console.error(`${this.name}: rollouts could not start: ${(error as Error).message}`)
        );
      });
      this.#stopRollouts = unsubscribe;
    }
    this.#listWatch = new ListWatch({
      store: this.store,
      lister: this.#lister,
      options: this.#options,
      faults: () => this.#faults,
      listenerState: () => this.#listener.state,
      sendJson: (exchange, code, body) => this.#sendJson(exchange, code, body),
      watchStarted: (session, exchange) => {
        this.#watches.add(session);
        this.#watchExchanges.set(session, exchange);
      },
      watchEnded: (session) => this.#watches.delete(session),
      endWatchListEarly: () => this.#watchListEndings.shift(),
    });
  }
  #stopRollouts = () => {};

  /**
   * Creates the cluster's CA and credentials and starts listening on 127.0.0.1.
   *
   * @example Start a server and read its kubeconfig
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
   *
   * await using server = await SimulatedApiServer.start({ name: "demo" });
   * const kubeconfig = server.kubeconfig();
   * assert.ok(kubeconfig.includes(server.url));
   * ```
   */
  static async start(options: SimulatedApiServerOptions): Promise<SimulatedApiServer> {
    const server = new SimulatedApiServer(options);
    await server.#issueAll();
    server.#port = options.port ?? 0;
    await server.start();
    return server;
  }

  /** `https://127.0.0.1:<port>`. */
  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  /** The port (kept across stop/start and hangs). */
  get port(): number {
    return this.#port;
  }

  /** Whether the listener serves, refuses (stopped) or hangs. */
  get listenerState(): ListenerState {
    return this.#listener.state;
  }

  /** Total requests received since start. */
  get requestCount(): number {
    return this.#requestCount;
  }

  /** Open watch streams (zombies included). */
  get openWatches(): number {
    return this.#watches.size;
  }

  /** The kinds this server serves (built-ins first). */
  get types(): readonly ResourceType[] {
    return this.#types;
  }

  /** The current faults. */
  get faults(): Readonly<FaultSettings> {
    return this.#faults;
  }

  /** The credentials that currently work. */
  credentials(): ClusterCredentials {
    return {
      caPem: this.#ca.certPem,
      clientCertificatePem: this.#admin.certPem,
      clientKeyPem: this.#admin.keyPem,
      token: this.#token,
    };
  }

  /**
   * A kubeconfig for this cluster with inline CA data.
   *
   * @param auth `"certificate"` (default, like Cluster API's kubeconfig Secrets) or `"token"`.
   */
  kubeconfig(auth: "certificate" | "token" = "certificate"): string {
    const c = this.credentials();
    return renderKubeconfig({
      name: this.name,
      server: this.url,
      caPem: c.caPem,
      user: auth === "token"
        ? { token: c.token }
        : { clientCertificatePem: c.clientCertificatePem, clientKeyPem: c.clientKeyPem },
    });
  }

  /** Calls `listener` after credentials or the CA change (rotation). */
  onCredentialsChanged(listener: () => void): () => void {
    this.#credentialListeners.add(listener);
    return () => this.#credentialListeners.delete(listener);
  }

  /** Requests received at or after `since` (epoch ms), optionally only non-watch ones. */
  requestsSince(since: number, options: { includeWatches?: boolean } = {}): RequestRecord[] {
    return this.requests.filter((r) => r.time >= since && (options.includeWatches || !r.watch));
  }

  /**
   * Issues an extra client certificate signed by this cluster's CA and accepts it (for tests of
   * expired or not-yet-valid certificates: the server's TLS layer then reports them unauthorized).
   */
  async issueClientCertificate(
    options: { subject?: string; notBefore?: Date; notAfter?: Date } = {},
  ): Promise<IssuedCertificate> {
    const cert = await issueCertificate(this.#ca, {
      subject: options.subject ?? "CN=extra,O=system:masters",
      ...(options.notBefore ? { notBefore: options.notBefore } : {}),
      ...(options.notAfter ? { notAfter: options.notAfter } : {}),
    });
    this.#validFingerprints.add(cert.fingerprint256);
    return cert;
  }

  /** Stops accepting a certificate {@linkcode issueClientCertificate} issued: its requests get 401. */
  revokeClientCertificate(fingerprint256: string): void {
    this.#validFingerprints.delete(fingerprint256);
  }

  async #issueAll(): Promise<void> {
    this.#generation++;
    this.#ca = await createCertificateAuthority(`sim-ca ${this.name} ${this.#generation}`);
    this.#serving = await issueCertificate(this.#ca, {
      subject: "CN=kube-apiserver",
      serverNames: this.#servingNames,
    });
    await this.#issueClientCredentials();
    this.#listener.setCredentials(this.#servingCredentials());
  }

  #servingCredentials() {
    return {
      keyPem: this.#serving.keyPem,
      certPem: this.#serving.certPem,
      caPem: this.#ca.certPem,
    };
  }

  async #issueClientCredentials(keepOld = false): Promise<void> {
    this.#admin = await issueCertificate(this.#ca, {
      subject: `CN=kubernetes-admin-${this.#generation},O=system:masters`,
    });
    this.#token = randomToken();
    if (!keepOld) this.retireOldCredentials();
    this.#validFingerprints.add(this.#admin.fingerprint256);
    this.#validTokens.add(this.#token);
  }

  /** Refuses (401) every client certificate and token but the current ones. */
  retireOldCredentials(): void {
    this.#validFingerprints.clear();
    this.#validTokens.clear();
    if (this.#admin) this.#validFingerprints.add(this.#admin.fingerprint256);
    if (this.#token) this.#validTokens.add(this.#token);
  }

  // ---------------------------------------------------------------- listener and faults

  /** Starts (or restarts) serving on the cluster's port. No-op when serving. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error(`Cluster ${this.name} is closed`);
    this.#port = await this.#listener.start(this.#port);
  }

  /** Stops listening and resets every connection: clients get ECONNREFUSED until {@linkcode start}. */
  async stop(): Promise<void> {
    for (const watch of [...this.#watches]) watch.detach();
    await this.#listener.stop();
  }

  /**
   * Hangs the server: new connections are accepted and never answered (not even the TLS handshake),
   * requests on open connections are never answered, and watch streams go silent. `hang(false)`
   * resets the stuck connections and serves again.
   */
  async hang(on: boolean): Promise<void> {
    if (!on && this.#listener.state === "hung") {
      for (const watch of [...this.#watches]) watch.detach();
    }
    await this.#listener.hang(on);
  }

  /**
   * Leaves the next `count` requests that match unanswered (the client sees a call that hangs until
   * it gives up), while every other request is served: one stuck call, as a busy etcd or an APF queue
   * makes one.
   *
   * @example One Lease renewal that never comes back
   * ```ts
   * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
   *
   * await using server = await SimulatedApiServer.start({ name: "stuck" });
   * server.hangRequests({ method: "PUT", path: /\/leases\// });
   * ```
   */
  hangRequests(match: { method?: string; path: RegExp }, count = 1): void {
    this.#singled.push({ method: match.method?.toUpperCase(), path: match.path, left: count });
  }

  /**
   * Fails the next `count` requests that match with `code` (a Status body, as an overloaded or
   * failing server answers), while every other request is served.
   *
   * @example Discovery fails once
   * ```ts
   * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
   *
   * await using server = await SimulatedApiServer.start({ name: "flaky-discovery" });
   * server.failRequests({ method: "GET", path: /^\/api\/v1$/ }, 1, 503);
   * ```
   */
  failRequests(match: { method?: string; path: RegExp }, count = 1, code = 500): void {
    this.#singled.push({
      method: match.method?.toUpperCase(),
      path: match.path,
      left: count,
      code,
    });
  }

  /**
   * Ends the next `count` WatchList streams (`sendInitialEvents=true`) after their initial events
   * and before the bookmark that ends them: cleanly, as a kube-apiserver shutting down gracefully
   * ends its watches (a client must not take that for a server without WatchList), or, with
   * `expired`, with a 410 Expired status as their last line.
   */
  endWatchListsEarly(count = 1, options: { expired?: boolean } = {}): void {
    for (let i = 0; i < count; i++) {
      this.#watchListEndings.push(options.expired ? "expired" : "closed");
    }
  }

  /** What happens to a request singled out: `"hang"`, a status code, or `undefined` (served). */
  #singledOut(exchange: Exchange): "hang" | number | undefined {
    const match = this.#singled.find((h) =>
      h.left > 0 && (h.method === undefined || h.method === exchange.method) &&
      h.path.test(exchange.url.pathname)
    );
    if (!match) return undefined;
    match.left--;
    return match.code ?? "hang";
  }

  /**
   * Sends GOAWAY on every open HTTP/2 connection, as kube-apiserver's `--goaway-chance` does: clients
   * must open a new connection for new requests, while streams in flight (watches too) go on until
   * they end. Idle HTTP/1.1 connections are closed.
   *
   * @returns How many connections were told.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
   *
   * await using server = await SimulatedApiServer.start({ name: "goaway" });
   * const { caPem, token } = server.credentials();
   * using client = Deno.createHttpClient({ caCerts: [caPem] });
   * const get = () => fetch(`${server.url}/api/v1/namespaces`, { client, headers: { authorization: `Bearer ${token}` } });
   * await (await get()).body?.cancel();
   * assert.deepEqual(server.connections.map((c) => c.protocol), ["h2"]);
   * assert.equal(server.goAway(), 1);
   * assert.deepEqual(server.connections.map((c) => c.goingAway), [true]);
   * ```
   */
  goAway(): number {
    return this.#listener.goAway();
  }

  /** The open client connections (protocol, requests carried, whether told to go away). */
  get connections(): OpenConnection[] {
    return this.#listener.connections;
  }

  /** Changes faults that stay on (latency, slow bodies, error rate, silenced watches, kinds). */
  setFaults(faults: Partial<FaultSettings>): void {
    const next = { ...this.#faults, ...structuredClone(faults) };
    const removedBefore = new Set(this.#faults.removedKinds);
    this.#faults = next;
    for (const watch of [...this.#watches]) {
      if (next.removedKinds.includes(watch.resource) && !removedBefore.has(watch.resource)) {
        watch.close();
      }
    }
  }

  /**
   * Clears every standing fault, and requests still to be hung or failed
   * ({@linkcode SimulatedApiServer.hangRequests}, {@linkcode SimulatedApiServer.failRequests}),
   * and serves again if stopped or hung.
   */
  async clearFaults(): Promise<void> {
    this.#faults = structuredClone(DEFAULT_FAULTS);
    this.#singled.length = 0;
    if (this.#listener.state === "hung") await this.hang(false);
    else if (this.#listener.state === "stopped") await this.start();
  }

  /**
   * Ends every open watch stream: `"close"` ends it cleanly (clients re-watch), `"reset"` resets the
   * connection under it mid-stream (no terminator; other streams on that connection die too), and
   * `"reset-stream"` resets only the stream (RST_STREAM on HTTP/2; a cut-off body on HTTP/1.1).
   */
  dropWatches(mode: "close" | "reset" | "reset-stream"): number {
    const watches = [...this.#watches];
    for (const watch of watches) {
      const exchange = this.#watchExchanges.get(watch);
      if (mode === "close") watch.close();
      else {
        watch.detach();
        if (mode === "reset") exchange?.connection.reset();
        else exchange?.reset();
      }
    }
    return watches.length;
  }
  readonly #watchExchanges = new WeakMap<WatchSession, Exchange>();
  readonly #listWatch: ListWatch;

  /**
   * Replaces the client certificate and token: the old ones get 401 from now on, or, with
   * `keepOld`, once {@linkcode retireOldCredentials} is called (as an EKS token stays valid until
   * it expires). Open connections are reset when `resetConnections` is set (kube-apiserver would
   * keep them). `notify: false` skips the credential listeners (the fleet then leaves the
   * kubeconfig Secret stale).
   */
  async rotateCredentials(
    options: { resetConnections?: boolean; notify?: boolean; keepOld?: boolean } = {},
  ): Promise<void> {
    await this.#issueClientCredentials(options.keepOld);
    if (options.resetConnections) {
      for (const watch of [...this.#watches]) watch.detach();
      this.#listener.resetConnections();
    }
    if (options.notify ?? true) { for (const listener of this.#credentialListeners) listener(); }
  }

  /**
   * Replaces the CA, the serving certificate and the client credentials, and restarts the listener:
   * clients that still trust the old CA fail TLS verification.
   */
  async rotateCA(): Promise<void> {
    await this.#issueAll();
    await this.#restartListener();
    for (const listener of this.#credentialListeners) listener();
  }

  /**
   * Serves a certificate for other names (e.g. one without `127.0.0.1`) to test hostname
   * verification; `undefined` restores localhost/127.0.0.1.
   */
  async setServingNames(names?: { dns?: string[]; ips?: string[] }): Promise<void> {
    this.#servingNames = { dns: names?.dns ?? ["localhost"], ips: names?.ips ?? ["127.0.0.1"] };
    if (names === undefined) this.#servingNames = { dns: ["localhost"], ips: ["127.0.0.1"] };
    this.#serving = await issueCertificate(this.#ca, {
      subject: "CN=kube-apiserver",
      serverNames: this.#servingNames,
    });
    await this.#restartListener();
  }

  async #restartListener(): Promise<void> {
    const wasServing = this.#listener.state === "serving";
    await this.stop();
    this.#listener.setCredentials(this.#servingCredentials());
    if (wasServing) await this.start();
  }

  /**
   * Restarts the API server, dropping every connection. `"reset"` restarts resourceVersions at 1 with
   * new UIDs (clients' versions are now in the future); `"jump"` moves them far ahead (old ones get
   * 410).
   */
  async restart(mode: "reset" | "jump"): Promise<void> {
    const wasServing = this.#listener.state === "serving";
    await this.stop();
    this.store.restart(mode);
    this.#lister.clear();
    if (wasServing) await this.start();
  }

  /**
   * Creates `count` objects as fast as possible (yielding now and then so streams flow), in
   * `namespace` (created if missing): ConfigMaps carrying `payloadBytes` of data, or realistic Pods
   * of about 2 KB (labels, owner, containers, probes, status). Each carries the epoch ms of its
   * creation (ConfigMaps in `data.t`, Pods in the `sim/created-at` annotation) so receivers can
   * measure delivery latency.
   *
   * @returns The names created.
   */
  async flood(
    options: {
      count: number;
      namespace?: string;
      payloadBytes?: number;
      kind?: "configmaps" | "pods";
    },
  ): Promise<string[]> {
    return await flood(
      this.store,
      (plural) => this.#type("", plural)!,
      options,
      this.#lifetime.signal,
    );
  }

  /** Stops everything for good; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    this.#stopRollouts();
    for (const watch of [...this.#watches]) watch.detach();
    await this.#listener.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- request handling

  #type(group: string, plural: string): ResourceType | undefined {
    const type = this.#types.find((t) => t.group === group && t.plural === plural);
    if (!type || this.#faults.removedKinds.includes(resourceId(type))) return undefined;
    return type;
  }

  /** Looks up a served kind by group and plural (removed kinds excluded). */
  typeOf(group: string, plural: string): ResourceType | undefined {
    return this.#type(group, plural);
  }

  #servedTypes(): ResourceType[] {
    return this.#types.filter((t) => !this.#faults.removedKinds.includes(resourceId(t)));
  }

  #record(exchange: Exchange): void {
    this.#requestCount++;
    const url = exchange.url;
    const watch = url.searchParams.get("watch") === "true" ||
      url.searchParams.get("watch") === "1" ||
      url.pathname.includes("/watch/");
    this.requests.push({
      time: Date.now(),
      method: exchange.method,
      path: url.pathname,
      watch,
      query: Object.fromEntries(url.searchParams),
      connection: exchange.connection.id,
      protocol: exchange.connection.protocol,
    });
    if (this.requests.length > 5000) this.requests.splice(0, this.requests.length - 5000);
  }

  async #onRequest(exchange: Exchange): Promise<void> {
    this.#record(exchange);
    if (this.#listener.state !== "serving") return; // hung: never answer
    const singled = this.#singledOut(exchange);
    if (singled === "hang") return; // one stuck call: never answer it
    try {
      if (this.#faults.latencyMs > 0) {
        await sleep(this.#faults.latencyMs, this.#lifetime.signal);
        if (exchange.finished || this.#closed) return;
      }
      if (this.#listener.state !== "serving") return;
      if (typeof singled === "number") {
        injectError({
          ...this.#faults,
          errorRate: { rate: 1, codes: [singled], retryAfterSeconds: 1 },
        });
      }
      injectError(this.#faults);
      const user = authenticate(exchange, this.#validFingerprints, this.#validTokens);
      if (!user) throw errors.unauthorized();
      await this.#route(exchange, user);
    } catch (error) {
      if (exchange.finished) return;
      if (exchange.headersSent) {
        exchange.reset();
        return;
      }
      if (error instanceof StatusError) {
        await this.#sendJson(exchange, error.status.code, error.status, error.retryAfterSeconds);
      } else {
        const status = errors.internalError(String((error as Error)?.message ?? error));
        await this.#sendJson(exchange, 500, status.status);
      }
    }
  }

  async #sendJson(
    exchange: Exchange,
    code: number,
    body: unknown,
    retryAfterSeconds?: number,
  ): Promise<void> {
    if (this.#faults.garbleBodies) {
      return this.#send(
        exchange,
        200,
        { "content-type": "text/html" },
        "<html><body>502 Bad Gateway</body></html>",
      );
    }
    const text = JSON.stringify(body);
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-cache, private",
    };
    if (retryAfterSeconds !== undefined) headers["retry-after"] = retryAfterSeconds;
    await this.#send(exchange, code, headers, text);
  }

  async #send(
    exchange: Exchange,
    code: number,
    headers: Record<string, string | number>,
    text: string,
  ): Promise<void> {
    const slow = this.#faults.slowBody;
    exchange.writeHead(code, headers);
    if (!slow) {
      exchange.end(text);
      return;
    }
    const bytes = Buffer.from(text);
    for (let offset = 0; offset < bytes.length; offset += slow.chunkBytes) {
      if (offset > 0) await sleep(slow.intervalMs, this.#lifetime.signal);
      if (exchange.finished || this.#listener.state !== "serving") return;
      exchange.write(bytes.subarray(offset, offset + slow.chunkBytes));
    }
    exchange.end();
  }

  async #readBody(exchange: Exchange): Promise<string> {
    const media = (exchange.headers.get("content-type") ?? "application/json").split(";")[0]!
      .trim();
    const protobuf = exchange.method !== "PATCH" && media === PROTOBUF_MEDIA;
    if (
      exchange.method !== "PATCH" && !protobuf && media !== "application/json" && media !== "" &&
      media !== "*/*"
    ) {
      // kube-apiserver also speaks CBOR; the simulator JSON, and protobuf for what kubectl sends.
      throw new StatusError({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message:
          `the body of the request was in an unknown format - accepted media types include: application/json; got ${media}`,
        reason: "UnsupportedMediaType",
        code: 415,
      });
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of exchange.body()) {
      size += chunk.length;
      if (size > this.#options.maxRequestBodyBytes) {
        throw new StatusError({
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: "Request entity too large: limit is 3000000",
          reason: "RequestEntityTooLarge",
          code: 413,
        });
      }
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    if (protobuf) {
      const { decodeProtobufObject } = await this.#kubectl();
      return JSON.stringify(decodeProtobufObject(new Uint8Array(body)));
    }
    return body.toString("utf8");
  }

  /** kubectl's parts (Tables, protobuf, OpenAPI documents, scale, reviews, rollouts), loaded once needed. */
  #kubectl(): Promise<KubectlParts> {
    return kubectlParts ??= import("./kubectl/mod.ts");
  }

  /** Reads the request as kube-apiserver does, then serves it: a resource request by its verb. */
  async #route(exchange: Exchange, user: UserInfo): Promise<void> {
    let info: RequestInfo;
    try {
      info = requestInfo(exchange.method, exchange.url);
    } catch (error) {
      // kube-apiserver's request-info filter answers what it cannot read with a 500.
      throw errors.internalError(`failed to create RequestInfo: ${(error as Error).message}`);
    }
    if (!info.isResourceRequest) return this.#nonResource(exchange, info);
    const request = await this.#resourceRequest(exchange, user, info);
    if (request.type.verbs) return this.#review(request);
    if (info.subresource === "scale") return this.#scale(request);
    const handler = this.#verbs[info.verb];
    if (!handler) throw errors.methodNotAllowed(exchange.method);
    return handler(request);
  }

  /** Discovery, `/version`, health and OpenAPI. */
  async #nonResource(exchange: Exchange, info: RequestInfo): Promise<void> {
    const segments = info.path.split("/").filter((s) => s !== "");
    const [first, second, third] = segments;
    if (first === undefined) return this.#sendJson(exchange, 200, rootPaths(this.#servedTypes()));
    if (first === "version" && segments.length === 1) {
      return this.#sendJson(exchange, 200, {
        major: "1",
        minor: "32",
        gitVersion: "v1.32.0-sim",
        gitCommit: "simulated",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.23",
        compiler: "gc",
        platform: "linux/amd64",
      });
    }
    if (first === "openapi" && second === "v2" && segments.length === 2) {
      // kube-apiserver also offers v2 as protobuf (gnostic), which the simulator does not encode.
      const accept = exchange.headers.get("accept") ?? "*/*";
      if (!/application\/json|\*\/\*/.test(accept)) {
        throw new StatusError(failure(
          406,
          "NotAcceptable",
          "only the following media types are accepted: application/json",
        ));
      }
      const { openApiV2 } = await this.#kubectl();
      return this.#send(exchange, 200, { "content-type": "application/json" }, await openApiV2());
    }
    if (first === "openapi" && second === "v3") {
      const { documentIndex, documentText } = await this.#kubectl();
      if (segments.length === 2) {
        return this.#sendJson(exchange, 200, await documentIndex(this.#openApi));
      }
      const document = await documentText(this.#openApi, segments.slice(2).join("/"));
      if (!document) throw errors.pathNotFound();
      return this.#send(exchange, 200, { "content-type": "application/json" }, document.text);
    }
    if (first === "healthz" || first === "livez" || first === "readyz") {
      const verbose = exchange.url.searchParams.has("verbose");
      const body = verbose ? `[+]ping ok\n${first} check passed\n` : "ok";
      return this.#send(exchange, 200, { "content-type": "text/plain; charset=utf-8" }, body);
    }
    if (first === "api" && segments.length === 1) {
      return this.#sendJson(exchange, 200, apiVersions(`127.0.0.1:${this.#port}`));
    }
    if (first === "api" && segments.length === 2) return this.#discovery(exchange, "", second!);
    if (first === "apis" && segments.length === 1) {
      return this.#sendJson(exchange, 200, apiGroupList(this.#servedTypes()));
    }
    if (first === "apis" && segments.length === 2) {
      const doc = apiGroup(this.#servedTypes(), second!);
      if (!doc) throw errors.pathNotFound();
      return this.#sendJson(exchange, 200, doc);
    }
    if (first === "apis" && segments.length === 3) {
      return this.#discovery(exchange, second!, third!);
    }
    throw errors.pathNotFound();
  }

  /** What a resource request is for, checked against the kinds served (404 for what is not). */
  async #resourceRequest(
    exchange: Exchange,
    user: UserInfo,
    info: RequestInfo,
  ): Promise<ResourceRequest> {
    // The name in the path (a list's `name` comes from its field selector, for authorization).
    const name = info.parts[1];
    if (info.parts.length === 0 || info.parts.length > 3) throw errors.pathNotFound();
    const type = this.#type(info.apiGroup, info.resource);
    if (!type || !type.versions.includes(info.apiVersion)) throw errors.pathNotFound();
    // `namespaces/<name>` names the namespace itself, which is not in a namespace.
    const namespace = type.namespaced && info.namespace !== "" ? info.namespace : undefined;
    if (!type.namespaced && info.namespace !== "" && type !== NAMESPACE_TYPE) {
      throw errors.pathNotFound();
    }
    if (type.namespaced && name !== undefined && namespace === undefined) {
      throw errors.pathNotFound();
    }
    const subresource = info.subresource;
    if (
      subresource !== "" &&
      !(subresource === "status" && type.statusSubresource) &&
      !(subresource === "scale" && type.scale)
    ) {
      throw errors.pathNotFound();
    }
    if (this.#faults.forbiddenKinds.includes(resourceId(type))) {
      throw errors.forbidden("kubernetes-admin", info.verb, type.group, type.plural, namespace);
    }
    const params = exchange.url.searchParams;
    const method = exchange.method;
    const dryRun = params.getAll("dryRun").includes("All");
    const manager = params.get("fieldManager") ??
      (exchange.headers.get("user-agent") ?? "unknown").split("/")[0]!;
    let print: Printer | undefined;
    if (TABLE_MEDIA.test(exchange.headers.get("accept") ?? "")) {
      const { toTable } = await this.#kubectl();
      const includeObject = params.get("includeObject");
      print = (objects, metadata) => toTable(type, objects, metadata, includeObject);
    }
    return {
      exchange,
      user,
      type,
      version: info.apiVersion,
      namespace,
      name,
      params,
      print,
      writeOptions: {
        ...(subresource === "status" ? { subresource: "status" as const } : {}),
        ...(dryRun ? { dryRun: true } : {}),
        fieldManager: manager,
        ...(method === "PATCH" &&
            (exchange.headers.get("content-type") ?? "").startsWith("application/apply-patch")
          ? { operation: "Apply" as const }
          : {}),
      },
    };
  }

  /** What each verb does (kube-apiserver's REST handlers). */
  readonly #verbs: Record<string, (request: ResourceRequest) => Promise<void>> = {
    get: (r) => this.#get(r),
    list: (r) =>
      this.#listWatch.list(r.exchange, r.type, r.version, r.namespace, r.params, r.print),
    watch: (r) => {
      if (r.name !== undefined) {
        // The deprecated /watch/.../<name> path: a watch of one object.
        r.params.set(
          "fieldSelector",
          [r.params.get("fieldSelector"), `metadata.name=${r.name}`].filter(Boolean).join(","),
        );
      }
      return this.#listWatch.watch(r.exchange, r.type, r.version, r.namespace, r.params, r.print);
    },
    // A collection takes no PUT or PATCH, an object no POST: there is no route for them.
    create: (r) => r.name === undefined ? this.#create(r) : this.#notAllowed(r),
    update: (r) => r.name !== undefined ? this.#update(r) : this.#notAllowed(r),
    patch: (r) => r.name !== undefined ? this.#patch(r) : this.#notAllowed(r),
    delete: (r) => this.#delete(r),
    deletecollection: (r) => this.#deleteCollection(r),
  };

  #notAllowed({ exchange }: ResourceRequest): Promise<void> {
    throw errors.methodNotAllowed(exchange.method);
  }

  /** The review kinds: created, answered, never stored. */
  async #review({ exchange, type, version, name, user }: ResourceRequest): Promise<void> {
    if (name !== undefined || exchange.method !== "POST") {
      throw errors.methodNotAllowed(exchange.method);
    }
    const body = admit(type, version, parseBody(await this.#readBody(exchange)), "", undefined);
    const { answerReview } = await this.#kubectl();
    return this.#sendJson(exchange, 201, answerReview(type, body, user));
  }

  /** The `/scale` subresource (kubectl scale, autoscalers). */
  async #scale({ exchange, type, namespace, name, writeOptions }: ResourceRequest): Promise<void> {
    if (name === undefined) throw errors.pathNotFound();
    const { toScale, writeScale } = await this.#kubectl();
    const ns = namespace ?? "";
    const options = { ...writeOptions, operation: "Update" as const };
    switch (exchange.method) {
      case "GET": {
        const object = this.store.get(type, ns, name);
        if (!object) throw errors.notFound(type.group, type.plural, name);
        return this.#sendJson(exchange, 200, toScale(object));
      }
      case "PUT": {
        const body = parseBody(await this.#readBody(exchange));
        return this.#sendJson(
          exchange,
          200,
          writeScale(this.store, type, ns, name, { put: body }, options),
        );
      }
      case "PATCH": {
        const change = {
          patch: patchTypeOf(exchange.headers.get("content-type") ?? ""),
          body: await this.#readBody(exchange),
        };
        return this.#sendJson(
          exchange,
          200,
          writeScale(this.store, type, ns, name, change, options),
        );
      }
      default:
        throw errors.methodNotAllowed(exchange.method);
    }
  }

  #get({ exchange, type, version, namespace, name, print }: ResourceRequest): Promise<void> {
    const object = this.store.get(type, namespace ?? "", name!);
    if (!object) throw errors.notFound(type.group, type.plural, name!);
    const out = this.#out(type, version, object);
    return this.#sendJson(
      exchange,
      200,
      print ? print([out], { resourceVersion: out.metadata?.resourceVersion }) : out,
    );
  }

  async #create(
    { exchange, type, version, namespace, writeOptions }: ResourceRequest,
  ): Promise<void> {
    const parsed = parseBody(await this.#readBody(exchange));
    await this.#checkFields(exchange, type, version, parsed);
    const body = admit(type, version, parsed, namespace ?? "", undefined);
    const created = this.store.create(type, body, writeOptions);
    return this.#sendJson(exchange, 201, this.#out(type, version, created));
  }

  async #update(
    { exchange, type, version, namespace, name, writeOptions }: ResourceRequest,
  ): Promise<void> {
    const parsed = parseBody(await this.#readBody(exchange));
    await this.#checkFields(exchange, type, version, parsed);
    const body = admit(type, version, parsed, namespace ?? "", name);
    const updated = this.store.update(type, body, writeOptions);
    return this.#sendJson(exchange, 200, this.#out(type, version, updated));
  }

  async #patch(
    { exchange, type, version, namespace, name, params, writeOptions }: ResourceRequest,
  ): Promise<void> {
    const ns = namespace ?? "";
    const patchType = patchTypeOf(exchange.headers.get("content-type") ?? "");
    const text = await this.#readBody(exchange);
    const checked = await this.#checkPatchFields(
      exchange,
      type,
      version,
      ns,
      name!,
      patchType,
      text,
    );
    const existed = this.store.get(type, ns, name!) !== undefined;
    const patched = patch(
      this.store,
      type,
      version,
      ns,
      name!,
      patchType,
      checked,
      params.get("fieldManager"),
      writeOptions,
      params.get("force") === "true",
    );
    return this.#sendJson(exchange, existed ? 200 : 201, this.#out(type, version, patched));
  }

  async #delete(
    { exchange, type, version, namespace, name, writeOptions }: ResourceRequest,
  ): Promise<void> {
    const text = await this.#readBody(exchange);
    let preconditions = {};
    if (text.trim()) {
      const options = parseBody(text) as {
        preconditions?: { uid?: string; resourceVersion?: string };
      };
      preconditions = options.preconditions ?? {};
    }
    const deleted = this.store.delete(type, namespace ?? "", name!, preconditions, writeOptions);
    return this.#sendJson(exchange, 200, this.#out(type, version, deleted));
  }

  async #deleteCollection(
    { exchange, type, namespace, params, writeOptions }: ResourceRequest,
  ): Promise<void> {
    const selectors = parseSelectors(
      type,
      params.get("labelSelector"),
      params.get("fieldSelector"),
    );
    const result = await this.#lister.list(type, {
      namespace,
      selectors,
      labelSelectorText: params.get("labelSelector") ?? "",
      fieldSelectorText: params.get("fieldSelector") ?? "",
    }, AbortSignal.timeout(60_000));
    for (const object of result.items) {
      this.store.delete(
        type,
        object.metadata?.namespace ?? "",
        object.metadata!.name!,
        {},
        writeOptions,
      );
    }
    return this.#sendJson(exchange, 200, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      code: 200,
    });
  }

  /**
   * kube-apiserver's field validation (`fieldValidation`, default `Warn`) of a body: unknown fields
   * are a 400 under `Strict`, warnings under `Warn`, nothing under `Ignore`.
   */
  async #checkFields(
    exchange: Exchange,
    type: ResourceType,
    version: string,
    object: KubeObject,
  ): Promise<void> {
    const mode = exchange.url.searchParams.get("fieldValidation") ?? "Warn";
    const unknown = await this.#openApi.unknownFields(type, version, object);
    if (unknown.length === 0) return;
    if (mode === "Ignore") {
      for (const field of unknown) removeField(object, field);
      return;
    }
    const named = unknown.map((field) => `unknown field ${JSON.stringify(field)}`).join(", ");
    if (mode === "Strict") {
      throw errors.badRequest(
        `${type.kind} in version ${
          JSON.stringify(version)
        } cannot be handled as a ${type.kind}: strict decoding error: ${named}`,
      );
    }
    for (const field of unknown) exchange.warn(`unknown field ${JSON.stringify(field)}`);
    // A typed object cannot hold them: they are dropped, as kube-apiserver's decoder drops them.
    for (const field of unknown) removeField(object, field);
  }

  /**
   * Field validation of a patch, on what it would write: `Strict` is a 422 on the `patch` field; an
   * apply configuration with unknown fields is refused whatever the mode (it cannot be typed).
   */
  async #checkPatchFields(
    exchange: Exchange,
    type: ResourceType,
    version: string,
    namespace: string,
    name: string,
    patchType: PatchType,
    text: string,
  ): Promise<string> {
    let result: unknown;
    let document: unknown;
    try {
      document = patchType === "apply" ? parseYaml(text) : JSON.parse(text);
      if (patchType === "json") {
        const stored = this.store.get(type, namespace, name);
        if (!stored) return text;
        result = applyJsonPatch(toServedVersion(type, stored, version) as JsonValue, document);
      } else result = document;
    } catch {
      return text; // the patch itself reports what is wrong with it
    }
    if (!result || typeof result !== "object" || Array.isArray(result)) return text;
    const mode = exchange.url.searchParams.get("fieldValidation") ?? "Warn";
    const unknown = await this.#openApi.unknownFields(type, version, result as KubeObject);
    if (unknown.length === 0) return text;
    if (patchType === "apply") {
      const object = result as KubeObject;
      const problems = unknown.map((field) => `.${field}: field not declared in schema`);
      throw new StatusError(failure(
        500,
        "",
        // Go prints a GroupVersionKind as "group/version, Kind=kind" (core: "/v1").
        `failed to create typed patch object (${
          object.metadata?.namespace ?? ""
        }/${name}; ${type.group}/${version}, Kind=${type.kind}): ${
          problems.length === 1 ? problems[0] : `errors:\n  ${problems.join("\n  ")}`
        }`,
      ));
    }
    const named = unknown.map((field) => `unknown field ${JSON.stringify(field)}`).join(", ");
    if (mode === "Strict") {
      throw errors.invalid("", "", [{
        field: "patch",
        message: `Invalid value: ${
          JSON.stringify(JSON.stringify(result))
        }: strict decoding error: ${named}`,
      }]);
    }
    if (mode !== "Ignore") {
      for (const field of unknown) exchange.warn(`unknown field ${JSON.stringify(field)}`);
    }
    // What would land in an unknown field is dropped, as kube-apiserver's decoder drops it.
    if (patchType === "json") {
      const pointers = unknown.map((field) =>
        "/" + field.replace(/\[(\d+)\]/g, ".$1").split(".").join("/")
      );
      return JSON.stringify(
        (document as { path?: string }[]).filter((op) =>
          !pointers.some((p) => op.path === p || op.path?.startsWith(`${p}/`))
        ),
      );
    }
    for (const field of unknown) removeField(document as KubeObject, field);
    return JSON.stringify(document);
  }

  #out(type: ResourceType, version: string, object: KubeObject): KubeObject {
    return toServedVersion(type, object, version);
  }

  #discovery(exchange: Exchange, group: string, version: string): Promise<void> {
    const doc = apiResourceList(this.#servedTypes(), group, version);
    if (!doc) throw errors.pathNotFound();
    return this.#sendJson(exchange, 200, doc);
  }
}
