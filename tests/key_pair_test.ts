import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { checkKeyPair, recordedPublicKey } from "../workers/key_pair.ts";
import { PinnedConnection } from "../workers/pinned_connection.ts";
import { SimulatedApiServer } from "../testing/mod.ts";
import { eventually } from "./helpers/fixture.ts";

x509.cryptoProvider.set(crypto);

type Algorithm = RsaHashedKeyGenParams | EcKeyGenParams | { name: "Ed25519" };

/** A self-signed certificate and its key as PKCS #8 PEM. */
async function pair(algorithm: Algorithm): Promise<{ certPem: string; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const signingAlgorithm = algorithm.name === "ECDSA"
    ? { name: "ECDSA", hash: "SHA-256" }
    : algorithm;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=client",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm,
  });
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const body = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n");
  return {
    certPem: cert.toString("pem"),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`,
  };
}

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const P256 = { name: "ECDSA", namedCurve: "P-256" };
const P384 = { name: "ECDSA", namedCurve: "P-384" };

/** The same key in every PEM form `node:crypto` writes for it. */
function forms(keyPem: string): Record<string, string> {
  const key = createPrivateKey(keyPem);
  const found: Record<string, string> = { pkcs8: keyPem };
  if (key.asymmetricKeyType === "ec") {
    found.sec1 = key.export({ format: "pem", type: "sec1" }) as string;
  }
  if (key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    // `openssl ecparam -genkey` writes the curve's parameters (here P-256's OID) before the key.
    found["sec1 after EC PARAMETERS"] =
      "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
      found.sec1;
  }
  if (key.asymmetricKeyType === "rsa") {
    found.pkcs1 = key.export({ format: "pem", type: "pkcs1" }) as string;
  }
  return found;
}

/** TCP connections from or to `port` that are established (Linux: /proc/net/tcp). */
function established(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1).filter((line) => {
    const [, local, remote, state] = line.trim().split(/\s+/);
    return state === "01" && (local?.endsWith(hex) || remote?.endsWith(hex));
  }).length;
}

/** What `node:crypto` says, the slow way: the answer the fast check must give. */
function belongs(certPem: string, keyPem: string): boolean {
  return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
}

Deno.test("recordedPublicKey() reads the public half EC and RSA key files record, and nothing else", async () => {
  const ec = await pair(P256);
  const rsa = await pair(RSA);
  const ed = await pair({ name: "Ed25519" });
  for (const [form, pem] of Object.entries(forms(ec.keyPem))) {
    const key = recordedPublicKey(pem);
    assert.equal(key?.kty, "EC", form);
    assert.equal(key.kty === "EC" && key.crv, "P-256", form);
    assert.equal(key.kty === "EC" && key.x.length, 32, form);
  }
  for (const [form, pem] of Object.entries(forms(rsa.keyPem))) {
    const key = recordedPublicKey(pem);
    assert.equal(key?.kty, "RSA", form);
    assert.deepEqual(key.kty === "RSA" && [...key.e], [1, 0, 1], form);
    assert.equal(key.kty === "RSA" && key.n.length, 256, form);
  }
  const encrypted = createPrivateKey(ec.keyPem).export({
    format: "pem",
    type: "pkcs8",
    cipher: "aes-256-cbc",
    passphrase: "secret",
  }) as string;
  for (
    const pem of [
      ed.keyPem, // Ed25519 keys record no public half
      encrypted,
      "-----BEGIN PRIVATE KEY-----\nAAAAbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
      "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
      ec.keyPem.slice(0, 100), // cut short
      ec.certPem,
      "",
    ]
  ) {
    assert.equal(recordedPublicKey(pem), undefined, pem.slice(0, 40));
  }
});

Deno.test("checkKeyPair() agrees with node:crypto on every pairing of keys and certificates", async () => {
  const pairs = [await pair(P256), await pair(P256), await pair(P384), await pair(RSA)];
  pairs.push(await pair(RSA), await pair({ name: "Ed25519" }), await pair({ name: "Ed25519" }));
  let accepted = 0;
  let refused = 0;
  for (const cert of pairs) {
    for (const key of pairs) {
      for (const [form, pem] of Object.entries(forms(key.keyPem))) {
        const expected = belongs(cert.certPem, pem);
        assert.equal(expected, cert === key, "the oracle itself");
        if (expected) {
          checkKeyPair(cert.certPem, pem);
          accepted++;
        } else {
          assert.throws(
            () => checkKeyPair(cert.certPem, pem),
            (error: Error & { code?: string }) => {
              assert.equal(error.code, "InvalidKubeconfig", form);
              assert.match(error.message, /does not belong to the client certificate/);
              return true;
            },
          );
          refused++;
        }
      }
    }
  }
  // P-256: 2 keys x 3 forms; P-384: 2 forms; RSA: 2 keys x 2 forms; Ed25519: 2 keys x 1 form.
  assert.equal(accepted, 6 + 2 + 4 + 2);
  assert.ok(refused > 50);
});

Deno.test("checkKeyPair() names what cannot be parsed, never its content", async () => {
  const { certPem, keyPem } = await pair(P256);
  const garbage = "-----BEGIN PRIVATE KEY-----\nAAAAbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
  const badCert = "-----BEGIN CERTIFICATE-----\nAAAAbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
  for (
    const [cert, key, why] of [
      [certPem, garbage, /client key \(client-key-data\) cannot be parsed/],
      [badCert, keyPem, /client certificate cannot be parsed/],
    ] as const
  ) {
    assert.throws(
      () => checkKeyPair(cert, key),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "InvalidKubeconfig");
        assert.match(error.message, why);
        assert.ok(!/AAAA|BEGIN|MII/.test(error.message));
        return true;
      },
    );
  }
});

const der = (pem: string) =>
  Uint8Array.from(atob(pem.replace(/-----[^-]+-----|\s/g, "")), (c) => c.charCodeAt(0));
const pem = (label: string, bytes: Uint8Array) =>
  `-----BEGIN ${label}-----\n${btoa(String.fromCharCode(...bytes))}\n-----END ${label}-----\n`;

/** `bytes` with `find` replaced by `put` (same length), which must be found once. */
function replaced(bytes: Uint8Array, find: Uint8Array, put: Uint8Array): Uint8Array {
  const at = bytes.findIndex((_, i) => find.every((byte, j) => bytes[i + j] === byte));
  assert.ok(at >= 0, "found");
  const copy = bytes.slice();
  copy.set(put, at);
  return copy;
}

const base64url = (text: string) =>
  Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

Deno.test("a key whose private part is damaged passes the check, and its connection fails as an invalid kubeconfig, leaving nothing open", async () => {
  // The check reads only the public half a key file records. Deno's TLS stack refuses a key whose
  // private part is damaged, with an error that reads as a network fault; the connection then runs
  // the full check, so the request fails as InvalidKubeconfig, which is not retried as a blip.
  await using server = await SimulatedApiServer.start({ name: "damaged-key" });
  const a = await server.issueClientCertificate();
  const b = await server.issueClientCertificate();
  const point = (keyPem: string) => {
    const key = recordedPublicKey(keyPem);
    assert.ok(key?.kty === "EC");
    return new Uint8Array([4, ...key.x, ...key.y]);
  };
  const privateNumber = (keyPem: string) =>
    base64url(createPrivateKey(keyPem).export({ format: "jwk" }).d!);
  const rsa = await pair(RSA);
  const rsaDer = der(rsa.keyPem);
  rsaDer[400] = rsaDer[400]! ^ 0xff; // inside the private exponent (bytes ~299-560 of 2048 bits)
  const damaged: [string, string, string][] = [
    // a's private number with b's public point: a corrupt file, not another certificate's key
    [
      "EC key recording another key's point",
      b.certPem,
      pem("PRIVATE KEY", replaced(der(a.keyPem), point(a.keyPem), point(b.keyPem))),
    ],
    [
      "EC key whose private number is out of range",
      b.certPem,
      pem(
        "PRIVATE KEY",
        replaced(der(b.keyPem), privateNumber(b.keyPem), new Uint8Array(32).fill(0xff)),
      ),
    ],
    [
      "RSA key with a byte flipped in its private exponent",
      rsa.certPem,
      pem("PRIVATE KEY", rsaDer),
    ],
  ];
  const port = Number(new URL(server.url).port);
  for (const [what, certPem, keyPem] of damaged) {
    assert.throws(() => createPrivateKey(keyPem), `node:crypto sees it: ${what}`);
    checkKeyPair(certPem, keyPem); // the public half is intact
    assert.throws(() => checkKeyPair(a.certPem, keyPem), /does not belong/);
    const connection = new PinnedConnection({
      server: server.url,
      caPem: server.credentials().caPem,
      clientCertificatePem: certPem,
      clientKeyPem: keyPem,
      deniedNetworks: [],
    });
    try {
      const outcome = await connection.request({
        method: "GET",
        path: "/api/v1/namespaces",
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(10_000),
      }).then(async (response) => {
        await response.body?.cancel();
        return `answered ${response.status}`;
      }, (error: Error & { code?: string }) => `${error.code}: ${error.message}`);
      assert.equal(
        outcome,
        "InvalidKubeconfig: the client key (client-key-data) cannot be parsed",
        what,
      );
      // The TCP connection was left open when Deno's TLS failed this way (and the simulated
      // server then never stopped).
      await eventually(() => established(port) === 0, `no TCP connection is left: ${what}`);
    } finally {
      connection.close();
    }
  }
});

Deno.test("a key recording no public half, or on a curve the reader does not know, gets the full check", async () => {
  const { certPem, keyPem } = await pair(P256);
  const other = await pair(P256);
  // SEC 1 without its optional public point: version, private number, curve.
  const d = base64url(createPrivateKey(keyPem).export({ format: "jwk" }).d!);
  const curve = [0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
  const body = [0x02, 0x01, 0x01, 0x04, 0x20, ...d, ...curve];
  const bare = pem("EC PRIVATE KEY", new Uint8Array([0x30, body.length, ...body]));
  assert.equal(recordedPublicKey(bare), undefined);
  checkKeyPair(certPem, bare);
  assert.throws(() => checkKeyPair(other.certPem, bare), /does not belong/);
  // A public point but no curve named: left to node:crypto too (a key with explicit parameters,
  // which Deno refuses, must not pass the quick check and then fail only at the fallback).
  const key = recordedPublicKey(keyPem);
  assert.ok(key?.kty === "EC");
  const point = [0x03, 0x42, 0x00, 0x04, ...key.x, ...key.y];
  const noCurve = [0x02, 0x01, 0x01, 0x04, 0x20, ...d, 0xa1, point.length, ...point];
  assert.equal(
    recordedPublicKey(pem("EC PRIVATE KEY", new Uint8Array([0x30, noCurve.length, ...noCurve]))),
    undefined,
  );
  // secp256k1: its own certificate cannot be made here, but its key is left to node:crypto.
  const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).privateKey;
  for (const type of ["pkcs8", "sec1"] as const) {
    assert.equal(recordedPublicKey(k1.export({ format: "pem", type }) as string), undefined, type);
  }
});
