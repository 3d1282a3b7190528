/**
 * Splits a fleet between replicas through the management cluster's `coordination.k8s.io/v1` Leases,
 * with optimistic concurrency and no consensus of our own. Loaded on the main thread.
 *
 * - Each replica keeps a **membership Lease**; the members a replica sees renewing are live. A
 *   replica that stops deletes it, and one that expired long ago is collected by any replica.
 * - Clusters fall into **buckets** (a hash of their key); each bucket belongs to the live member
 *   rendezvous hashing picks. Fencing per bucket keeps Lease writes bounded by the bucket count,
 *   not the fleet's size.
 * - A replica serves a bucket only while it holds the bucket's **fencing Lease**: it creates it,
 *   renews it, or takes it over once it is released or has not changed for a lease duration (as
 *   seen on the taker's clock, like client-go's leader election, so clock skew cannot shorten it).
 * - Renewals run on a fixed cadence, first thing in a round and from the replica's own copies (no
 *   read first), each call bounded well inside the slack between the renew interval and the renew
 *   deadline and retried within it, as client-go's leader election retries until `RenewDeadline`: a
 *   slow or briefly hung management API delays nothing that matters.
 * - A replica that cannot renew stops serving at the renew deadline, before its Lease can look
 *   expired to anyone else; a bucket handed to another member is let go before its Lease is
 *   released. So no cluster is ever served by two replicas at once.
 * - Deployments in one namespace are told apart by their Lease prefix, carried in a label.
 *
 * @module
 */

import { isAlreadyExists, isConflict, isNotFound } from "../../shared/errors.ts";
import type { KubeObject } from "../../shared/kube_object.ts";
import { sleep } from "../../shared/backoff.ts";
import { hash53, ownerOf, type ShardMember } from "./rendezvous.ts";
import { resolveSharding, type ShardingOptions } from "../options.ts";

export { resolveSharding, type ShardingOptions };

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

/**
 * The Lease calls the coordinator needs. Each is bounded by its `signal`; conflicts must throw
 * errors `isConflict` recognises, missing Leases errors `isNotFound` recognises.
 */
export interface LeaseApi {
  /** Leases in the namespace matching a label selector. */
  list(namespace: string, labelSelector: string, signal: AbortSignal): Promise<Lease[]>;
  /** One Lease, or `undefined` when it does not exist. */
  get(namespace: string, name: string, signal: AbortSignal): Promise<Lease | undefined>;
  /** Creates a Lease; an existing one throws AlreadyExists. */
  create(lease: Lease, signal: AbortSignal): Promise<Lease>;
  /** Replaces a Lease at its `metadata.resourceVersion`; a newer one throws Conflict. */
  update(lease: Lease, signal: AbortSignal): Promise<Lease>;
  /** Deletes a Lease if it is still at its `metadata.resourceVersion` (else Conflict). */
  delete(lease: Lease, signal: AbortSignal): Promise<void>;
}

/** The label every coordinator Lease carries: its role, `member` or `shard`. */
export const LEASE_LABEL = "clustercache.fleetkit.dev/lease";
/** The label naming the deployment a Lease belongs to: its `leasePrefix`. */
export const LEASE_PREFIX_LABEL = "clustercache.fleetkit.dev/lease-prefix";

/**
 * The time budgets of a round, from the sharding timings. The slack is what a renewal may take
 * before the renew deadline passes (renew deadline - renew interval, 5 s by default).
 */
export function roundBudgets(
  options: Pick<Required<ShardingOptions>, "renewIntervalMs" | "renewDeadlineMs">,
): { renewCallMs: number; retryPeriodMs: number; otherCallMs: number } {
  const slack = options.renewDeadlineMs - options.renewIntervalMs;
  return {
    // A hung call gives up in time for one more attempt before the deadline.
    renewCallMs: Math.round(slack * 0.6),
    retryPeriodMs: Math.round(slack / 10),
    // Lists, take-overs and releases delay no renewal: they may take longer.
    otherCallMs: Math.round(options.renewIntervalMs / 2),
  };
}

interface Observed {
  resourceVersion: string;
  /** Since when the Lease is known unchanged, on this replica's monotonic clock. */
  since: number;
}

/** A fencing Lease this replica holds: its own last copy, and when that write was sent. */
interface Held {
  lease: Lease;
  renewedAt: number;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace("Z", "000Z");

/** Member Leases unrenewed for this many lease durations are deleted by whoever sees them. */
const COLLECT_AFTER_LEASES = 10;
/** At most this many such deletions a round (a pile left by old rollouts goes in a few rounds). */
const COLLECT_PER_ROUND = 10;

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
  readonly #budgets: ReturnType<typeof roundBudgets>;
  readonly #api: LeaseApi;
  readonly #now: () => number;
  readonly #held = new Map<number, Held>();
  readonly #observed = new Map<string, Observed>();
  readonly #listeners = new Set<(changed: boolean) => void>();
  #member: Lease | undefined;
  #members: ShardMember[] = [];
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  /** Aborted by `stop()`: ends the loop and the calls of the round in flight. */
  #stopping = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #changed = false;
  #writes = 0;
  /** When the earliest fence this replica wants, held by another, expires (monotonic ms). */
  #takeoverAt = Infinity;
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
    this.#budgets = roundBudgets(this.#options);
    this.#holder = `${this.#options.identity}_${crypto.randomUUID()}`;
    this.#api = api;
    this.#now = now;
  }

  /** This replica's identity. */
  get identity(): string {
    return this.#options.identity;
  }

  /** Lease writes so far (creates, updates and deletes), for the bench. */
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

  /** The replica that should serve `key`, among the members this one sees (for operators). */
  ownerOf(key: string): string | undefined {
    return ownerOf(`bucket-${this.bucketOf(key)}`, this.#members);
  }

  /** Whether this replica serves `key` now: it holds the bucket's fencing Lease, freshly renewed. */
  owns(key: string): boolean {
    return this.ownedUntil(key) !== undefined;
  }

  /**
   * Until when (epoch ms) this replica may serve `key` without renewing again, or `undefined` when
   * it does not serve it. Workers refuse writes past it, whatever the main thread's timers do.
   */
  ownedUntil(key: string): number | undefined {
    const held = this.#held.get(this.bucketOf(key));
    if (!held) return undefined;
    const left = held.renewedAt + this.#options.renewDeadlineMs - this.#now();
    return left > 0 ? Date.now() + left : undefined;
  }

  /**
   * Calls `listener` after every round and whenever ownership lapses: `changed` says whether what
   * this replica serves changed (renewals alone move {@linkcode ownedUntil}).
   */
  onChange(listener: (changed: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts the renew loop (the first round runs at once, then one every renew interval). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopping = new AbortController();
    this.#loop = this.#run(this.#stopping.signal);
  }

  /**
   * Stops. `release` (the default) gives up the buckets and deletes the membership Lease at once,
   * so others need not wait a lease duration; a crashed replica releases nothing, which
   * `release: false` imitates in tests.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stopping.abort();
    clearTimeout(this.#deadline);
    await this.#loop;
    const held = [...this.#held];
    this.#held.clear();
    if (held.length > 0) this.#notify(true); // stop serving before anything is released
    if (options.release === false) return;
    const member = this.#member;
    await Promise.allSettled([
      ...held.map(([bucket, { lease }]) => this.#release(bucket, lease)),
      ...(member ? [this.#call((s) => this.#api.delete(member, s), true)] : []),
    ]);
  }

  async #run(stopping: AbortSignal): Promise<void> {
    let next = this.#now();
    while (this.#running) {
      // A fence of ours that another replica let expire is taken when it expires, not up to a
      // renew interval later.
      const due = Math.min(next, this.#takeoverAt);
      const wait = due - this.#now();
      if (wait > 0 && !await sleep(wait, stopping)) return;
      try {
        await this.round();
      } catch {
        // The management API failed us: renewals go on next round; owns() turns false at the
        // deadline meanwhile.
      }
      if (!this.#running) return;
      this.#notify();
      // A fixed cadence: the next round is due a renew interval after this one was, however long
      // this one took (one that overran starts the next at once, never a burst).
      if (due === next) next = Math.max(next + this.#options.renewIntervalMs, this.#now());
    }
  }

  /** Tells the listeners, with whether ownership changed since they were last told. */
  #notify(changed = false): void {
    changed ||= this.#changed;
    this.#changed = false;
    this.#armDeadline();
    for (const listener of this.#listeners) {
      // A listener's failure must not stop the others, nor escape a timer and end the process.
      try {
        listener(changed);
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
    const earliest = Math.min(...[...this.#held.values()].map((h) => h.renewedAt)) +
      this.#options.renewDeadlineMs;
    this.#deadline = setTimeout(() => {
      const now = this.#now();
      for (const [bucket, held] of this.#held) {
        if (now - held.renewedAt >= this.#options.renewDeadlineMs) this.#lose(bucket);
      }
      this.#notify();
    }, Math.max(0, earliest - this.#now()) + 1);
  }

  /** One Lease call, bounded by its budget and by `stop()`; counted when it writes. */
  async #call<T>(
    call: (signal: AbortSignal) => Promise<T>,
    write: boolean,
    timeoutMs = this.#budgets.otherCallMs,
  ): Promise<T> {
    if (write) this.#writes++;
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (this.#running) signals.push(this.#stopping.signal);
    return await call(AbortSignal.any(signals));
  }

  #name(role: "member" | "shard", id: string | number): string {
    return `${this.#options.leasePrefix}-${role}-${id}`;
  }

  #labels(role: "member" | "shard"): Record<string, string> {
    return { [LEASE_LABEL]: role, [LEASE_PREFIX_LABEL]: this.#options.leasePrefix };
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
        labels: this.#labels(role),
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

  #renewed(lease: Lease): Lease {
    return { ...lease, spec: { ...lease.spec, renewTime: microTime(Date.now()) } };
  }

  /** Whether a Lease held by someone else has gone unrenewed for a lease duration, by our clock. */
  #expired(lease: Lease): boolean {
    const seen = this.#observed.get(lease.metadata!.name!);
    return seen !== undefined && this.#now() - seen.since >= this.#options.leaseDurationMs;
  }

  /**
   * Notes since when each Lease has been unchanged; `complete` lists forget the rest. A Lease seen
   * for the first time counts as unchanged since its `renewTime`, less a lease duration for clock
   * skew: one renewed long ago is not waited out again, one renewed lately is.
   */
  #observe(leases: Lease[], complete = false): void {
    const now = this.#now();
    const names = new Set<string>();
    for (const lease of leases) {
      const name = lease.metadata!.name!;
      names.add(name);
      const rv = lease.metadata!.resourceVersion!;
      const known = this.#observed.get(name);
      if (known?.resourceVersion === rv) continue;
      const renewed = Date.parse(lease.spec?.renewTime ?? "");
      const age = known || Number.isNaN(renewed)
        ? 0
        : Math.max(0, Date.now() - renewed - this.#options.leaseDurationMs);
      this.#observed.set(name, { resourceVersion: rv, since: now - age });
    }
    if (!complete) return;
    for (const name of this.#observed.keys()) if (!names.has(name)) this.#observed.delete(name);
  }

  /**
   * One round: renew what this replica holds, see the members, then let go of what is no longer
   * its own and take what is.
   */
  async round(): Promise<void> {
    // 1. Renewals first, from our own copies: a slow list can never make a renewal late.
    await Promise.all([
      this.#renewMember(),
      ...[...this.#held.keys()].map((bucket) => this.#renew(bucket)),
    ]);

    // 2. Who is there, and who holds what.
    const namespace = this.#options.leaseNamespace;
    const selector = `${LEASE_LABEL},${LEASE_PREFIX_LABEL}=${this.#options.leasePrefix}`;
    const leases = await this.#call((s) => this.#api.list(namespace, selector, s), false);
    this.#observe(leases, true);
    const byName = new Map(leases.map((l) => [l.metadata!.name!, l]));
    const memberLeases = leases.filter((l) => l.metadata?.labels?.[LEASE_LABEL] === "member");
    const members: ShardMember[] = memberLeases
      .filter((l) => l.spec?.holderIdentity && !this.#expired(l))
      .map((l) => ({
        identity: l.spec!.holderIdentity!,
        weight: Number(l.metadata?.annotations?.[`${LEASE_LABEL}-weight`] ?? 1) || 1,
      }))
      .filter((m) => m.identity !== this.identity);
    members.push({ identity: this.identity, weight: this.#options.weight });
    this.#members = members;

    // 3. Stop serving what is no longer ours before releasing it; take what is.
    const wanted = (bucket: number) => ownerOf(`bucket-${bucket}`, members) === this.identity;
    const letGo = [...this.#held].filter(([bucket]) => !wanted(bucket));
    for (const [bucket] of letGo) this.#held.delete(bucket);
    if (letGo.length > 0) this.#notify(true);
    const taking: Promise<void>[] = [];
    this.#takeoverAt = Infinity;
    for (let bucket = 0; bucket < this.#options.buckets; bucket++) {
      if (!wanted(bucket) || this.#held.has(bucket)) continue;
      const fence = byName.get(this.#name("shard", bucket));
      taking.push(this.#take(bucket, fence));
      const seen = fence && this.#observed.get(fence.metadata!.name!);
      if (seen && fence.spec?.holderIdentity && fence.spec.holderIdentity !== this.#holder) {
        const expires = seen.since + this.#options.leaseDurationMs + 1;
        if (expires > this.#now()) this.#takeoverAt = Math.min(this.#takeoverAt, expires);
      }
    }
    await Promise.allSettled([
      ...letGo.map(([bucket, { lease }]) => this.#release(bucket, lease)),
      ...taking,
      this.#collect(memberLeases),
    ]);
  }

  /** Renews this replica's membership Lease (creating it, or taking up the one that is there). */
  async #renewMember(): Promise<void> {
    const { renewCallMs } = this.#budgets;
    const namespace = this.#options.leaseNamespace;
    const name = this.#name("member", this.identity);
    for (let attempt = 0; attempt < 2; attempt++) {
      const mine = this.#member;
      try {
        this.#member = mine
          ? await this.#call((s) => this.#api.update(this.#renewed(mine), s), true, renewCallMs)
          : await this.#call(
            (s) => this.#api.create(this.#lease("member", this.identity), s),
            true,
            renewCallMs,
          );
        return;
      } catch (error) {
        // Conflict: another incarnation with our identity, or our own write that landed after we
        // gave up on it; AlreadyExists: left by an earlier incarnation; NotFound: collected.
        if (isNotFound(error)) this.#member = undefined;
        else if (isConflict(error) || isAlreadyExists(error)) {
          this.#member = await this.#call(
            (s) => this.#api.get(namespace, name, s),
            false,
            renewCallMs,
          )
            .catch(() => undefined);
        } else return; // unreachable: the Lease has a lease duration to spare
      }
    }
  }

  /**
   * Renews a held fence, retrying failures until its deadline is near. A fence someone else wrote
   * is lost (it looked expired to them: our deadline has passed already).
   */
  async #renew(bucket: number): Promise<void> {
    const { renewCallMs, retryPeriodMs } = this.#budgets;
    const first = this.#held.get(bucket)!;
    const lapse = first.renewedAt + this.#options.renewDeadlineMs;
    let lease = first.lease;
    while (this.#running && this.#held.get(bucket)?.lease === lease) {
      // Counted from before the write: others see the change no earlier than the server made it.
      const sent = this.#now();
      try {
        const written = await this.#call(
          (s) => this.#api.update(this.#renewed(lease), s),
          true,
          renewCallMs,
        );
        this.#observe([written]);
        if (!this.#running) return;
        // It may have lapsed while the write was on its way: it is ours again from when it was sent.
        if (!this.#held.has(bucket)) this.#changed = true;
        this.#held.set(bucket, { lease: written, renewedAt: sent });
        return;
      } catch (error) {
        if (isConflict(error)) {
          // Someone else wrote it, or our own write landed after we gave up on it: look.
          const name = this.#name("shard", bucket);
          const current = await this.#call(
            (s) => this.#api.get(this.#options.leaseNamespace, name, s),
            false,
            renewCallMs,
          ).catch(() => null);
          if (current === undefined || (current && current.spec?.holderIdentity !== this.#holder)) {
            this.#lose(bucket, true);
            return;
          }
          if (current) {
            const still = this.#held.get(bucket);
            if (still?.lease !== lease) return;
            this.#held.set(bucket, { ...still, lease: current });
            lease = current;
            continue;
          }
        } else if (isNotFound(error)) {
          this.#lose(bucket, true);
          return;
        }
        // Unreachable, timed out or refused: again, while the deadline allows.
        if (this.#now() + retryPeriodMs >= lapse) return;
        if (!await sleep(retryPeriodMs, this.#stopping.signal)) return;
      }
    }
  }

  /** Stops serving a bucket; `tellNow` tells the listeners at once rather than at the round's end. */
  #lose(bucket: number, tellNow = false): void {
    if (!this.#held.delete(bucket)) return;
    this.#changed = true;
    // Someone else has it: the rest of the round (a list, take-overs) may take a while.
    if (tellNow) this.#notify();
  }

  /** Takes a fence that is free (missing, released or expired), or finds it is ours already. */
  async #take(bucket: number, fence: Lease | undefined, looked = false): Promise<void> {
    const holder = fence?.spec?.holderIdentity;
    const sent = this.#now();
    let written: Lease;
    try {
      if (!fence) {
        written = await this.#call((s) => this.#api.create(this.#lease("shard", bucket), s), true);
      } else if (holder === this.#holder) {
        // Ours already (a write we gave up on landed): renew it.
        written = await this.#call((s) => this.#api.update(this.#renewed(fence), s), true);
      } else if (!holder || this.#expired(fence)) {
        const taken = this.#lease("shard", bucket, (fence.spec?.leaseTransitions ?? 0) + 1);
        const metadata = {
          ...fence.metadata,
          labels: { ...fence.metadata?.labels, ...this.#labels("shard") },
        };
        written = await this.#call((s) => this.#api.update({ ...taken, metadata }, s), true);
      } else {
        return; // another replica still holds it: wait until it lets go or its Lease expires
      }
    } catch (error) {
      if (isAlreadyExists(error) && !looked) {
        // There, but not in our list: made by an earlier version, or our own create answered late.
        const name = this.#name("shard", bucket);
        const found = await this.#call(
          (s) => this.#api.get(this.#options.leaseNamespace, name, s),
          false,
        );
        if (found) {
          this.#observe([found]);
          return await this.#take(bucket, found, true);
        }
      }
      // Someone wrote it first: read it again next round. The resourceVersion decides, never us.
      if (isConflict(error) || isAlreadyExists(error) || isNotFound(error)) return;
      throw error;
    }
    this.#observe([written]);
    if (!this.#running) return; // stopped meanwhile: stop() releases what it holds, not this
    this.#held.set(bucket, { lease: written, renewedAt: sent });
    this.#changed = true;
  }

  /** Releases a fence (holder ""), so the next owner need not wait for it to expire. */
  async #release(bucket: number, lease: Lease): Promise<void> {
    const released = (l: Lease): Lease => ({ ...l, spec: { ...l.spec, holderIdentity: "" } });
    try {
      await this.#call((s) => this.#api.update(released(lease), s), true);
    } catch (error) {
      if (!isConflict(error)) return;
      // Our own renewal may have landed after we gave up on it: release what is there if ours.
      const name = this.#name("shard", bucket);
      const current = await this.#call(
        (s) => this.#api.get(this.#options.leaseNamespace, name, s),
        false,
      );
      if (current?.spec?.holderIdentity === this.#holder) {
        await this.#call((s) => this.#api.update(released(current), s), true);
      }
    }
  }

  /** Deletes member Leases released, or unrenewed for many lease durations (old rollouts). */
  async #collect(memberLeases: Lease[]): Promise<void> {
    const old = Date.now() - COLLECT_AFTER_LEASES * this.#options.leaseDurationMs;
    const mine = this.#name("member", this.identity);
    const stale = memberLeases.filter((l) => {
      if (l.metadata?.name === mine) return false;
      const renewed = Date.parse(l.spec?.renewTime ?? "");
      return !l.spec?.holderIdentity || (!Number.isNaN(renewed) && renewed < old);
    }).slice(0, COLLECT_PER_ROUND);
    // At its resourceVersion: a replica that renews meanwhile keeps its Lease.
    await Promise.allSettled(stale.map((l) => this.#call((s) => this.#api.delete(l, s), true)));
  }
}
