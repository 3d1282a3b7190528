/**
 * Splits a fleet between replicas through the management cluster's `coordination.k8s.io/v1` Leases,
 * with optimistic concurrency and no consensus of our own. Loaded on the main thread.
 *
 * - Each replica keeps a **membership Lease**; the members a replica sees renewing are live.
 * - Clusters fall into **buckets** (a hash of their key); each bucket belongs to the live member
 *   rendezvous hashing picks. Fencing per bucket keeps Lease writes bounded by the bucket count,
 *   not the fleet's size.
 * - A replica serves a bucket only while it holds the bucket's **fencing Lease**: it creates it,
 *   renews it, or takes it over once it is released or has not changed for a lease duration (as
 *   seen on the taker's clock, like client-go's leader election, so clock skew cannot shorten it).
 * - A replica that cannot renew stops serving at the renew deadline, before its Lease can look
 *   expired to anyone else; a bucket handed to another member is let go before its Lease is
 *   released. So no cluster is ever served by two replicas at once.
 *
 * @module
 */

import { isAlreadyExists, isConflict, isNotFound } from "../shared/errors.ts";
import type { KubeObject } from "../shared/kube_object.ts";
import { hash53, ownerOf, type ShardMember } from "./rendezvous.ts";

/** A Lease as the coordinator reads and writes it. */
export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** The Lease calls the coordinator needs; conflicts must throw errors `isConflict` recognises. */
export interface LeaseApi {
  /** Leases in the namespace carrying the label `LEASE_LABEL`. */
  list(namespace: string): Promise<Lease[]>;
  /** Creates a Lease; an existing one throws AlreadyExists. */
  create(lease: Lease): Promise<Lease>;
  /** Replaces a Lease at its `metadata.resourceVersion`; a newer one throws Conflict. */
  update(lease: Lease): Promise<Lease>;
}

/** The label every coordinator Lease carries: its role, `member` or `shard`. */
export const LEASE_LABEL = "clustercache.fleetkit.dev/lease";

/**
 * How replicas share a fleet (`ClusterCache.setup({ sharding })`): each cluster is served by one
 * replica at a time, chosen among the replicas that renew their Leases.
 *
 * @example
 * ```ts
 * import type { ShardingOptions } from "@fleetkit/clustercache";
 *
 * const sharding: ShardingOptions = {
 *   identity: Deno.env.get("POD_NAME") ?? "replica-1",
 *   leaseNamespace: "capi-system",
 * };
 * ```
 */
export interface ShardingOptions {
  /** This replica's identity: unique and stable (a Pod name). */
  identity: string;
  /** Where the Leases live in the management cluster. */
  leaseNamespace: string;
  /** Relative capacity of this replica. Default 1. */
  weight?: number;
  /** Lease duration. Default 20 s (multicluster-runtime's sharded coordinator). */
  leaseDurationMs?: number;
  /** How often Leases are renewed. Default 10 s. */
  renewIntervalMs?: number;
  /**
   * A replica that has not renewed a fencing Lease for this long stops serving its clusters.
   * Must be under the lease duration. Default 15 s.
   */
  renewDeadlineMs?: number;
  /** Buckets clusters are hashed into; the unit of ownership and of Lease writes. Default 64. */
  buckets?: number;
  /** Prefix of the Lease names. Default `clustercache`. */
  leasePrefix?: string;
}

/**
 * Validates sharding options and applies the defaults.
 *
 * @throws {TypeError} Without an identity or a namespace.
 * @throws {RangeError} Unless renew interval < renew deadline < lease duration, or for a bad weight
 *   or bucket count.
 */
export function resolveSharding(options: ShardingOptions): Required<ShardingOptions> {
  if (!options || typeof options.identity !== "string" || options.identity === "") {
    throw new TypeError("options.sharding.identity must be a non-empty string");
  }
  if (typeof options.leaseNamespace !== "string" || options.leaseNamespace === "") {
    throw new TypeError("options.sharding.leaseNamespace must be a non-empty string");
  }
  const resolved: Required<ShardingOptions> = {
    weight: 1,
    leaseDurationMs: 20_000,
    renewIntervalMs: 10_000,
    renewDeadlineMs: 15_000,
    buckets: 64,
    leasePrefix: "clustercache",
    ...options,
  };
  const r = resolved;
  if (
    !(r.renewIntervalMs > 0 && r.renewIntervalMs < r.renewDeadlineMs &&
      r.renewDeadlineMs < r.leaseDurationMs)
  ) {
    throw new RangeError(
      "options.sharding needs 0 < renewIntervalMs < renewDeadlineMs < leaseDurationMs",
    );
  }
  if (!(r.weight > 0) || !Number.isInteger(r.buckets) || r.buckets < 1) {
    throw new RangeError("options.sharding.weight must be positive and buckets a positive integer");
  }
  return resolved;
}

interface Observed {
  resourceVersion: string;
  /** When this replica first saw that resourceVersion (its own monotonic clock). */
  since: number;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace("Z", "000Z");

/**
 * One replica's view of who serves which cluster.
 *
 * @example Three replicas splitting a fleet (see tests/shard_coordinator_test.ts)
 * ```ts ignore
 * const coordinator = new ShardCoordinator({ identity: "replica-1", leaseNamespace: "fleet" }, api);
 * coordinator.onChange(() => requeueEveryCluster());
 * coordinator.start();
 * if (coordinator.owns("default/workload-7")) connect();
 * ```
 */
export class ShardCoordinator {
  readonly #options: Required<ShardingOptions>;
  readonly #api: LeaseApi;
  readonly #now: () => number;
  /** Buckets this replica serves, with when it last wrote its fencing Lease successfully. */
  readonly #held = new Map<number, number>();
  readonly #observed = new Map<string, Observed>();
  readonly #listeners = new Set<() => void>();
  #members: ShardMember[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #round: Promise<void> = Promise.resolve();
  #writes = 0;
  /**
   * Who holds fencing Leases: the identity plus this process's incarnation, so a restarted replica
   * (or a second one started by mistake with the same identity) never renews what another
   * incarnation holds; it waits for the Lease to be released or to expire, as client-go's leader
   * election does with its `hostname_uuid` identities.
   */
  readonly #holder: string;

  constructor(
    options: ShardingOptions,
    api: LeaseApi,
    now: () => number = () => performance.now(),
  ) {
    this.#options = resolveSharding(options);
    this.#holder = `${this.#options.identity}_${crypto.randomUUID()}`;
    this.#api = api;
    this.#now = now;
  }

  /** This replica's identity. */
  get identity(): string {
    return this.#options.identity;
  }

  /** Lease writes so far (creates and updates), for the bench. */
  get leaseWrites(): number {
    return this.#writes;
  }

  /** The live members, as this replica last saw them. */
  get members(): readonly ShardMember[] {
    return this.#members;
  }

  /** The bucket of a cluster key (`namespace/name`). */
  bucketOf(key: string): number {
    return hash53(key) % this.#options.buckets;
  }

  /** Whether this replica serves `key` now: it holds the bucket's fencing Lease, freshly renewed. */
  owns(key: string): boolean {
    const renewed = this.#held.get(this.bucketOf(key));
    return renewed !== undefined && this.#now() - renewed < this.#options.renewDeadlineMs;
  }

  /** Calls `listener` after any change of what this replica serves. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts the renew loop (the first round runs at once). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /**
   * Stops. `release` (the default) gives up the buckets at once so others need not wait a lease
   * duration; a crashed replica releases nothing, which `release: false` imitates in tests.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    await this.#round;
    const held = [...this.#held.keys()];
    this.#held.clear();
    if (held.length > 0) this.#notify();
    if (options.release === false) return;
    const leases = await this.#api.list(this.#options.leaseNamespace).catch(() => []);
    await Promise.all(
      leases.filter((l) => l.spec?.holderIdentity === this.#holder).map((l) =>
        this.#write(() => this.#api.update({ ...l, spec: { ...l.spec, holderIdentity: "" } }))
          .catch(() => {})
      ),
    );
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#runRound().finally(() => this.#schedule(this.#options.renewIntervalMs));
    }, delayMs);
  }

  async #runRound(): Promise<void> {
    const before = this.#servedBuckets();
    try {
      await this.round();
    } catch {
      // The management API is unreachable: renewals stop, and owns() turns false at the deadline.
    }
    // Ownership also lapses with time; report it when this round notices.
    if (this.#servedBuckets() !== before) this.#notify();
  }

  #servedBuckets(): string {
    const now = this.#now();
    return [...this.#held].filter(([, at]) => now - at < this.#options.renewDeadlineMs)
      .map(([b]) => b).sort((a, b) => a - b).join();
  }

  #notify(): void {
    this.#armDeadline();
    for (const listener of this.#listeners) {
      // A listener's failure must not stop the others, nor escape a timer and end the process.
      try {
        listener();
      } catch { /* the listener's own business */ }
    }
  }

  /**
   * Fires at the earliest renew deadline of a held bucket, so listeners let go on time even when a
   * round hangs on an unreachable API server.
   */
  #armDeadline(): void {
    clearTimeout(this.#deadline);
    if (!this.#running || this.#held.size === 0) return;
    const earliest = Math.min(...this.#held.values()) + this.#options.renewDeadlineMs;
    this.#deadline = setTimeout(() => {
      const now = this.#now();
      for (const [bucket, at] of this.#held) {
        if (now - at >= this.#options.renewDeadlineMs) this.#held.delete(bucket);
      }
      this.#notify();
    }, Math.max(0, earliest - this.#now()) + 1);
  }

  async #write<T>(call: () => Promise<T>): Promise<T> {
    this.#writes++;
    return await call();
  }

  #name(role: "member" | "shard", id: string | number): string {
    return `${this.#options.leasePrefix}-${role}-${id}`;
  }

  #lease(role: "member" | "shard", id: string | number, transitions = 0): Lease {
    const holder = role === "member" ? this.identity : this.#holder;
    const now = microTime(Date.now());
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        namespace: this.#options.leaseNamespace,
        name: this.#name(role, id),
        labels: { [LEASE_LABEL]: role },
        ...(role === "member"
          ? { annotations: { [`${LEASE_LABEL}-weight`]: String(this.#options.weight) } }
          : {}),
      },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: Math.ceil(this.#options.leaseDurationMs / 1000),
        acquireTime: now,
        renewTime: now,
        leaseTransitions: transitions,
      },
    };
  }

  /** Whether a Lease held by someone else has gone unrenewed for a lease duration, by our clock. */
  #expired(lease: Lease): boolean {
    const seen = this.#observed.get(lease.metadata!.name!);
    return seen !== undefined && this.#now() - seen.since >= this.#options.leaseDurationMs;
  }

  /** Notes when each Lease's resourceVersion was first seen; `complete` lists forget the rest. */
  #observe(leases: Lease[], complete = false): void {
    const now = this.#now();
    const names = new Set<string>();
    for (const lease of leases) {
      const name = lease.metadata!.name!;
      names.add(name);
      const rv = lease.metadata!.resourceVersion!;
      if (this.#observed.get(name)?.resourceVersion !== rv) {
        this.#observed.set(name, { resourceVersion: rv, since: now });
      }
    }
    if (!complete) return;
    for (const name of this.#observed.keys()) if (!names.has(name)) this.#observed.delete(name);
  }

  /** One round: renew membership, see the members, then hold exactly the buckets this replica should. */
  async round(): Promise<void> {
    const namespace = this.#options.leaseNamespace;
    let leases = await this.#api.list(namespace);
    this.#observe(leases, true);
    const byName = new Map(leases.map((l) => [l.metadata!.name!, l]));

    // Membership.
    const mine = byName.get(this.#name("member", this.identity));
    try {
      const renewed = mine
        ? await this.#write(() =>
          this.#api.update({
            ...mine,
            spec: { ...mine.spec, holderIdentity: this.identity, renewTime: microTime(Date.now()) },
          })
        )
        : await this.#write(() => this.#api.create(this.#lease("member", this.identity)));
      byName.set(renewed.metadata!.name!, renewed);
      leases = [...byName.values()];
      this.#observe([renewed]);
    } catch (error) {
      if (!isConflict(error) && !isAlreadyExists(error)) throw error;
    }
    const members: ShardMember[] = leases
      .filter((l) => l.metadata?.labels?.[LEASE_LABEL] === "member")
      .filter((l) =>
        l.spec?.holderIdentity && (l.spec.holderIdentity === this.identity || !this.#expired(l))
      )
      .map((l) => ({
        identity: l.spec!.holderIdentity!,
        weight: Number(l.metadata?.annotations?.[`${LEASE_LABEL}-weight`] ?? 1) || 1,
      }));
    if (!members.some((m) => m.identity === this.identity)) {
      members.push({ identity: this.identity, weight: this.#options.weight });
    }
    this.#members = members;

    // Buckets.
    const changes: Promise<void>[] = [];
    for (let bucket = 0; bucket < this.#options.buckets; bucket++) {
      const wanted = ownerOf(`bucket-${bucket}`, members) === this.identity;
      const fence = byName.get(this.#name("shard", bucket));
      changes.push(wanted ? this.#hold(bucket, fence) : this.#letGo(bucket, fence));
    }
    const results = await Promise.allSettled(changes);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  async #hold(bucket: number, fence: Lease | undefined): Promise<void> {
    const holder = fence?.spec?.holderIdentity;
    // Counted from before the write: others see the change no earlier than the server made it.
    const sent = this.#now();
    let written: Lease;
    try {
      if (!fence) {
        written = await this.#write(() => this.#api.create(this.#lease("shard", bucket)));
      } else if (holder === this.#holder) {
        written = await this.#write(() =>
          this.#api.update({ ...fence, spec: { ...fence.spec, renewTime: microTime(Date.now()) } })
        );
      } else if (!holder || this.#expired(fence)) {
        const taken = this.#lease("shard", bucket, (fence.spec?.leaseTransitions ?? 0) + 1);
        written = await this.#write(() =>
          this.#api.update({ ...taken, metadata: { ...taken.metadata, ...fence.metadata } })
        );
      } else {
        return; // another replica still holds it: wait until it lets go or its Lease expires
      }
    } catch (error) {
      // Someone wrote it first: read it again next round. The resourceVersion decides, never us.
      if (isConflict(error) || isAlreadyExists(error) || isNotFound(error)) return;
      throw error;
    }
    this.#observe([written]);
    const had = this.#held.has(bucket);
    this.#held.set(bucket, sent);
    if (!had) this.#notify();
    else this.#armDeadline();
  }

  async #letGo(bucket: number, fence: Lease | undefined): Promise<void> {
    if (this.#held.delete(bucket)) this.#notify(); // stop serving first...
    if (fence?.spec?.holderIdentity !== this.#holder) return;
    try {
      // ...then release, so the new owner need not wait for the Lease to expire.
      await this.#write(() =>
        this.#api.update({ ...fence, spec: { ...fence.spec, holderIdentity: "" } })
      );
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
  }
}
