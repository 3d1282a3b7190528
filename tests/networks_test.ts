import assert from "node:assert/strict";
import type { ClusterCacheError } from "../mod.ts";
import { checkNetworks, DEFAULT_DENIED_NETWORKS, deniedAddress } from "../src/shared/networks.ts";
import { resolveAllowed } from "../src/main/sessions/server_address.ts";

const denied = (address: string) => deniedAddress(address, DEFAULT_DENIED_NETWORKS);

Deno.test("deniedAddress(): metadata and link-local addresses are denied, in every spelling", () => {
  assert.equal(denied("169.254.169.254"), "169.254.0.0/16");
  assert.equal(denied("169.254.0.1"), "169.254.0.0/16");
  assert.equal(denied("::ffff:169.254.169.254"), "169.254.0.0/16", "IPv4-mapped IPv6");
  assert.equal(denied("::ffff:a9fe:a9fe"), "169.254.0.0/16", "the same, in hex");
  assert.equal(denied("fe80::1"), "fe80::/10");
  assert.equal(denied("[fe80::1%eth0]"), "fe80::/10", "bracketed, with a zone");
  assert.equal(denied("febf:ffff::1"), "fe80::/10");
  assert.equal(denied("fd00:ec2::254"), "fd00:ec2::254/128");
  assert.equal(denied("fd00:ec2:0:0:0:0:0:254"), "fd00:ec2::254/128");
  assert.equal(denied("100.100.100.200"), "100.100.100.200/32");
});

Deno.test("deniedAddress(): loopback, private and public addresses are allowed", () => {
  for (
    const address of [
      "127.0.0.1",
      "::1",
      "10.0.0.1",
      "192.168.1.1",
      "169.253.255.255",
      "fec0::1",
      "fd00:ec2::253",
      "8.8.8.8",
      "2001:db8::1",
    ]
  ) {
    assert.equal(denied(address), undefined, address);
  }
  assert.equal(denied("not an address"), undefined);
  assert.equal(deniedAddress("10.1.2.3", ["10.0.0.0/8"]), "10.0.0.0/8", "a list of one's own");
  assert.equal(deniedAddress("169.254.169.254", []), undefined, "an empty list denies nothing");
});

Deno.test("checkNetworks() names what is not a CIDR", () => {
  checkNetworks(DEFAULT_DENIED_NETWORKS, "options.deniedNetworks");
  assert.throws(() => checkNetworks(["10.0.0.0/33"], "options.deniedNetworks"), TypeError);
  assert.throws(() => checkNetworks(["fe80::/129"], "x"), /"fe80::\/129"/);
  assert.throws(() => checkNetworks(["example.com/8"], "x"), TypeError);
});

Deno.test("resolveAllowed(): a name that resolves to a metadata address is refused, whatever else it resolves to", async () => {
  const lookup = (answers: Record<string, string[]>) => (host: string) =>
    Promise.resolve(answers[host] ?? []);
  const dns = lookup({
    "api.example": ["10.0.0.5"],
    "sneaky.example": ["10.0.0.6", "169.254.169.254"],
    "v6.example": ["fd00:ec2::254"],
  });
  assert.deepEqual(await resolveAllowed("api.example", DEFAULT_DENIED_NETWORKS, dns), ["10.0.0.5"]);
  await assert.rejects(
    () => resolveAllowed("sneaky.example", DEFAULT_DENIED_NETWORKS, dns),
    (error: ClusterCacheError) =>
      error.code === "InvalidKubeconfig" && /sneaky\.example resolves to 169\.254\.169\.254/
        .test(error.message),
  );
  await assert.rejects(
    () => resolveAllowed("v6.example", DEFAULT_DENIED_NETWORKS, dns),
    /fd00:ec2::254\/128/,
  );
  await assert.rejects(
    () => resolveAllowed("[fe80::1]", DEFAULT_DENIED_NETWORKS, dns),
    (error: ClusterCacheError) => error.code === "InvalidKubeconfig",
  );
  await assert.rejects(
    () => resolveAllowed("nowhere.example", DEFAULT_DENIED_NETWORKS, dns),
    (error: ClusterCacheError) => error.code === "Unreachable",
  );
  assert.deepEqual(await resolveAllowed("127.0.0.1", DEFAULT_DENIED_NETWORKS, dns), ["127.0.0.1"]);
});
