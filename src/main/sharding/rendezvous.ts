/**
 * Weighted rendezvous (highest random weight) hashing: which replica owns a cluster. Every replica
 * computes the same answer from the same member list, with no coordination; a member that joins
 * or leaves moves only its own share of the clusters. Pure; loaded on the main thread.
 *
 * @module
 */

/** A replica taking part in sharding. */
export interface ShardMember {
  /** Unique and stable across restarts of the same replica (a Pod name, say). */
  readonly identity: string;
  /** Relative capacity; a member of weight 2 gets about twice the clusters of weight 1. Default 1. */
  readonly weight?: number;
}

/** 53 bits of a good, fast string hash (cyrb53): enough for scores, no crypto needed. */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The member's score for a key; the highest score owns it. */
function score(key: string, member: ShardMember): number {
  // Uniform in (0, 1), never 0 or 1, so the logarithm is finite and negative.
  const u = (hash53(`${member.identity}\u0000${key}`) + 0.5) / 2 ** 53;
  return -(member.weight ?? 1) / Math.log(u);
}

/**
 * The member that owns `key`, or `undefined` when there are none. Ties (practically impossible)
 * go to the smaller identity, so every replica agrees.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownerOf } from "./rendezvous.ts";
 *
 * const members = [{ identity: "a" }, { identity: "b" }, { identity: "c" }];
 * const owner = ownerOf("default/workload-1", members)!;
 * // Removing another member never moves a key away from its owner.
 * const others = members.filter((m) => m.identity !== owner && m.identity !== "c");
 * assert.equal(ownerOf("default/workload-1", [...others, { identity: owner }]), owner);
 * ```
 */
export function ownerOf(key: string, members: readonly ShardMember[]): string | undefined {
  let best: ShardMember | undefined;
  let bestScore = -Infinity;
  for (const member of members) {
    if (!((member.weight ?? 1) > 0)) continue;
    const s = score(key, member);
    if (s > bestScore || (s === bestScore && best && member.identity < best.identity)) {
      best = member;
      bestScore = s;
    }
  }
  return best?.identity;
}
