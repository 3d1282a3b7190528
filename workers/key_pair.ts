/**
 * Whether a kubeconfig's client key belongs to its client certificate (worker side), checked before
 * the first connection: Node's TLS context accepts a key that cannot be parsed or is another
 * certificate's, the connection then goes out without a client certificate, and the server's 401
 * would read as refused credentials rather than a broken kubeconfig.
 *
 * The check compares the public half a key file records (EC keys in SEC 1 or PKCS #8 carry their
 * public point; RSA keys their modulus and exponent) with the certificate's, which costs ~20 µs.
 * Parsing the key with `node:crypto` and asking the certificate costs ~430 µs in Deno for a P-256
 * key (it derives the public point twice), a tenth of a pooled worker's time while a fleet
 * connects; it stays the check for keys that record no public half (Ed25519, encrypted keys) or
 * that this reader does not know (other curves). A key file whose private part is damaged while its
 * public half is intact passes here and is refused by Deno's TLS stack when a connection is made:
 * the connection then runs {@linkcode checkKeyPairFully} to tell that apart from a network fault.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { ClusterCacheError } from "../src/shared/errors.ts";

/** A public key as a key file records it, the numbers big-endian. */
export type RecordedPublicKey =
  | { kty: "EC"; crv: string; x: Uint8Array; y: Uint8Array }
  | { kty: "RSA"; n: Uint8Array; e: Uint8Array };

/**
 * Refuses a client key that cannot be parsed or is not the certificate's.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig`, naming the field, never its content.
 */
export function checkKeyPair(certificatePem: string, keyPem: string): void {
  const recorded = recordedPublicKey(keyPem);
  const certificateKey = recorded && certificatePublicKey(certificatePem);
  if (recorded && certificateKey) {
    if (!sameKey(recorded, certificateKey)) throw notTheCertificates();
    return;
  }
  checkKeyPairFully(certificatePem, keyPem);
}

/**
 * The full check: parses the key with `node:crypto`, which refuses a damaged private part, and asks
 * the certificate whether the key is its own.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig`, naming the field, never its content.
 */
export function checkKeyPairFully(certificatePem: string, keyPem: string): void {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new ClusterCacheError(
      "InvalidKubeconfig",
      "the client key (client-key-data) cannot be parsed",
    );
  }
  let matches: boolean;
  try {
    matches = new X509Certificate(certificatePem).checkPrivateKey(key);
  } catch {
    throw new ClusterCacheError("InvalidKubeconfig", "the client certificate cannot be parsed");
  }
  if (!matches) throw notTheCertificates();
}

function notTheCertificates(): ClusterCacheError {
  return new ClusterCacheError(
    "InvalidKubeconfig",
    "the client key (client-key-data) does not belong to the client certificate",
  );
}

/**
 * The public key a PEM private key records: EC keys (SEC 1 `EC PRIVATE KEY`, or PKCS #8) with
 * their public point, RSA keys (PKCS #1 or PKCS #8); `undefined` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKeyPairSync } from "node:crypto";
 * import { recordedPublicKey } from "./key_pair.ts";
 * const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
 * const pem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
 * assert.equal(recordedPublicKey(pem)?.kty, "EC");
 * ```
 */
export function recordedPublicKey(keyPem: string): RecordedPublicKey | undefined {
  const block = /-----BEGIN ((?:EC |RSA )?PRIVATE KEY)-----([^-]*)-----END \1-----/.exec(keyPem);
  if (!block) return undefined;
  let der: Uint8Array;
  try {
    der = Uint8Array.fromBase64(block[2]!); // line breaks are skipped
  } catch {
    return undefined;
  }
  try {
    switch (block[1]) {
      case "EC PRIVATE KEY":
        return ecPrivateKey(der, undefined);
      case "RSA PRIVATE KEY":
        return rsaPrivateKey(der);
      default:
        return privateKeyInfo(der);
    }
  } catch {
    return undefined; // not the DER it claims to be: the full check says why
  }
}

const RSA_ENCRYPTION = "2a864886f70d010101"; // 1.2.840.113549.1.1.1
const EC_PUBLIC_KEY = "2a8648ce3d0201"; // 1.2.840.10045.2.1
const CURVES: Record<string, string> = {
  "2a8648ce3d030107": "P-256",
  "2b81040022": "P-384",
  "2b81040023": "P-521",
};

/** One DER element: its tag and where its content lies. */
interface Element {
  tag: number;
  start: number;
  end: number;
}

function element(der: Uint8Array, at: number, end = der.length): Element {
  if (at + 2 > end) throw new RangeError("DER element overruns its parent");
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes < 1 || bytes > 3 || start + bytes > end) throw new RangeError("bad DER length");
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  if (start + length > end) throw new RangeError("DER element overruns its parent");
  return { tag, start, end: start + length };
}

/** The elements inside a constructed element. */
function children(der: Uint8Array, parent: Element): Element[] {
  const found: Element[] = [];
  for (let at = parent.start; at < parent.end;) {
    const child = element(der, at, parent.end);
    found.push(child);
    at = child.end;
  }
  return found;
}

function expect(tag: number, got: Element | undefined): Element {
  if (got?.tag !== tag) throw new RangeError(`expected DER tag ${tag}`);
  return got;
}

function hex(der: Uint8Array, { start, end }: Element): string {
  let text = "";
  for (let i = start; i < end; i++) text += der[i]!.toString(16).padStart(2, "0");
  return text;
}

/** An unsigned big-endian integer without its leading zeros. */
function unsigned(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/** PKCS #8 `PrivateKeyInfo`. */
function privateKeyInfo(der: Uint8Array): RecordedPublicKey | undefined {
  const [version, algorithm, key] = children(der, expect(0x30, element(der, 0)));
  expect(0x02, version);
  const [oid, parameters] = children(der, expect(0x30, algorithm));
  const inner = expect(0x04, key);
  const content = der.subarray(inner.start, inner.end);
  switch (hex(der, expect(0x06, oid))) {
    case RSA_ENCRYPTION:
      return rsaPrivateKey(content);
    case EC_PUBLIC_KEY:
      return ecPrivateKey(content, curveOf(der, parameters));
    default:
      return undefined;
  }
}

/** The curve named by an OID; `null` for one this reader does not know (the full check decides). */
function curveOf(der: Uint8Array, parameters: Element | undefined): string | null | undefined {
  return parameters?.tag === 0x06 ? CURVES[hex(der, parameters)] ?? null : undefined;
}

/** SEC 1 `ECPrivateKey`: `undefined` when it does not record its public point. */
function ecPrivateKey(
  der: Uint8Array,
  curve: string | null | undefined,
): RecordedPublicKey | undefined {
  const fields = children(der, expect(0x30, element(der, 0)));
  expect(0x02, fields[0]);
  expect(0x04, fields[1]);
  let crv = curve;
  let point: Uint8Array | undefined;
  for (const field of fields.slice(2)) {
    if (field.tag === 0xa0 && crv === undefined) crv = curveOf(der, children(der, field)[0]);
    if (field.tag === 0xa1) {
      const bits = expect(0x03, children(der, field)[0]);
      if (der[bits.start] !== 0) return undefined;
      point = der.subarray(bits.start + 1, bits.end);
    }
  }
  // Only an uncompressed point (0x04 || x || y) on a named curve this reader knows is compared
  // here: every key it accepts must also be one node:crypto parses, or a connection's fallback to
  // the full check would call a network fault a broken key. A key with explicit curve parameters
  // (which Deno's createPrivateKey refuses) or none gets the full check at once.
  if (!crv || !point || point[0] !== 0x04 || point.length % 2 !== 1) return undefined;
  const half = (point.length - 1) / 2;
  return { kty: "EC", crv, x: point.subarray(1, 1 + half), y: point.subarray(1 + half) };
}

/** PKCS #1 `RSAPrivateKey`: version, modulus, public exponent, then the private numbers. */
function rsaPrivateKey(der: Uint8Array): RecordedPublicKey {
  const [version, n, e] = children(der, expect(0x30, element(der, 0)));
  expect(0x02, version);
  const modulus = expect(0x02, n);
  const exponent = expect(0x02, e);
  return {
    kty: "RSA",
    n: unsigned(der.subarray(modulus.start, modulus.end)),
    e: unsigned(der.subarray(exponent.start, exponent.end)),
  };
}

/** The members of a public JWK the comparison reads. */
interface PublicJwk {
  kty?: string | undefined;
  crv?: string | undefined;
  x?: string | undefined;
  y?: string | undefined;
  n?: string | undefined;
  e?: string | undefined;
}

/** The certificate's public key as a JWK, or `undefined` when it cannot be read. */
function certificatePublicKey(certificatePem: string): PublicJwk | undefined {
  try {
    return new X509Certificate(certificatePem).publicKey.export({ format: "jwk" });
  } catch {
    return undefined;
  }
}

function sameKey(recorded: RecordedPublicKey, certificate: PublicJwk): boolean {
  if (recorded.kty === "EC") {
    return certificate.kty === "EC" &&
      recorded.crv === certificate.crv &&
      sameBytes(recorded.x, base64url(certificate.x)) &&
      sameBytes(recorded.y, base64url(certificate.y));
  }
  return certificate.kty === "RSA" &&
    sameBytes(recorded.n, unsigned(base64url(certificate.n))) &&
    sameBytes(recorded.e, unsigned(base64url(certificate.e)));
}

function base64url(text: string | undefined): Uint8Array {
  return Uint8Array.fromBase64(text ?? "", { alphabet: "base64url" });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
