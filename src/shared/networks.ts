/**
 * Networks a workload cluster's API server may not be in (both sides: the main thread checks a
 * kubeconfig before connecting; workers check every address a name resolves to). A kubeconfig
 * Secret is written by whoever may write Secrets in the management namespace; its `server` must not
 * make this process send that kubeconfig's credentials to a cloud metadata endpoint or a link-local
 * address. Loopback stays allowed (tests and port-forwards use it).
 *
 * @module
 */

/**
 * Denied by default: IPv4 and IPv6 link-local (169.254.169.254 is where AWS, GCP, Azure and
 * OpenStack serve instance metadata and credentials), AWS's IPv6 metadata endpoint and Alibaba
 * Cloud's metadata endpoint.
 */
export const DEFAULT_DENIED_NETWORKS: readonly string[] = [
  "169.254.0.0/16",
  "fe80::/10",
  "fd00:ec2::254/128",
  "100.100.100.200/32",
];

/** An address as 128 bits (IPv4 as IPv4-mapped IPv6), or `undefined` when it is not one. */
export function bits(address: string): bigint | undefined {
  const text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return 0xffff00000000n + BigInt(parts.reduce((acc, p) => acc * 256 + p, 0));
  }
  if (!text.includes(":")) return undefined;
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  let expanded = text;
  const tail = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (tail) {
    const v4bits = bits(tail[1]!);
    if (v4bits === undefined) return undefined;
    const low = Number(v4bits & 0xffffffffn);
    expanded = `${text.slice(0, -tail[1]!.length)}${(low >>> 16).toString(16)}:${
      (low & 0xffff).toString(16)
    }`;
  }
  const halves = expanded.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << 16n) + BigInt(parseInt(group, 16));
  }
  return value;
}

/** A CIDR as its first address and mask; IPv4 prefixes count within the IPv4-mapped range. */
function network(cidr: string): { base: bigint; mask: bigint } | undefined {
  const [address, prefixText] = cidr.split("/");
  const base = bits(address ?? "");
  if (base === undefined) return undefined;
  const v4 = !address!.includes(":");
  const prefix = prefixText === undefined ? (v4 ? 32 : 128) : Number(prefixText);
  const max = v4 ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  const length = BigInt((v4 ? 96 : 0) + prefix);
  const mask = length === 0n ? 0n : ((1n << length) - 1n) << (128n - length);
  return { base: base & mask, mask };
}

/**
 * Checks CIDRs, for options.
 *
 * @throws {TypeError} Naming the first that is not one.
 */
export function checkNetworks(cidrs: readonly string[], name: string): void {
  for (const cidr of cidrs) {
    if (typeof cidr !== "string" || !network(cidr)) {
      throw new TypeError(
        `${name} must be CIDRs such as "169.254.0.0/16": ${JSON.stringify(cidr)}`,
      );
    }
  }
}

/**
 * The denied network `address` falls in, or `undefined` when it is allowed (or not an address).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DENIED_NETWORKS, deniedAddress } from "./networks.ts";
 * assert.equal(deniedAddress("169.254.169.254", DEFAULT_DENIED_NETWORKS), "169.254.0.0/16");
 * assert.equal(deniedAddress("::ffff:169.254.169.254", DEFAULT_DENIED_NETWORKS), "169.254.0.0/16");
 * assert.equal(deniedAddress("127.0.0.1", DEFAULT_DENIED_NETWORKS), undefined);
 * ```
 */
export function deniedAddress(address: string, denied: readonly string[]): string | undefined {
  const value = bits(address);
  if (value === undefined) return undefined;
  return denied.find((cidr) => {
    const n = parsedNetwork(cidr);
    return n !== undefined && (value & n.mask) === n.base;
  });
}

// Parsed once: every connect checks its server against the same few CIDRs (parsing them each time
// cost the main thread 20 ms at the start of 1,000 clusters). They come from options: few, fixed.
const parsedNetworks = new Map<string, ReturnType<typeof network>>();

function parsedNetwork(cidr: string): ReturnType<typeof network> {
  if (!parsedNetworks.has(cidr)) parsedNetworks.set(cidr, network(cidr));
  return parsedNetworks.get(cidr);
}
