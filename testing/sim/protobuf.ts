/**
 * Decodes the Kubernetes protobuf encoding of the built-in objects kubectl's generator commands
 * send (`kubectl create namespace|configmap|secret`): kubectl sends built-in kinds as
 * `application/vnd.kubernetes.protobuf` and does not fall back to JSON, so the simulator reads them
 * as kube-apiserver does. The envelope is `k8s\0` and a `runtime.Unknown` message holding the type
 * and the object's own message (k8s.io/api's generated.proto).
 *
 * @module
 */

import type { KubeObject } from "../../src/kube_object.ts";
import { errors, failure, StatusError } from "./status.ts";

/** The media type. */
export const PROTOBUF_MEDIA = "application/vnd.kubernetes.protobuf";

type Scalar = "string" | "bytes" | "int64" | "bool" | "time";
interface Field {
  name: string;
  type: Scalar | Schema | { map: "string" | "bytes" };
  repeated?: boolean;
}
type Schema = Record<number, Field>;

const TIME: Schema = { 1: { name: "seconds", type: "int64" }, 2: { name: "nanos", type: "int64" } };
const OWNER_REFERENCE: Schema = {
  1: { name: "kind", type: "string" },
  3: { name: "name", type: "string" },
  4: { name: "uid", type: "string" },
  5: { name: "apiVersion", type: "string" },
  6: { name: "controller", type: "bool" },
  7: { name: "blockOwnerDeletion", type: "bool" },
};
const OBJECT_META: Schema = {
  1: { name: "name", type: "string" },
  2: { name: "generateName", type: "string" },
  3: { name: "namespace", type: "string" },
  5: { name: "uid", type: "string" },
  6: { name: "resourceVersion", type: "string" },
  7: { name: "generation", type: "int64" },
  8: { name: "creationTimestamp", type: "time" },
  9: { name: "deletionTimestamp", type: "time" },
  10: { name: "deletionGracePeriodSeconds", type: "int64" },
  11: { name: "labels", type: { map: "string" } },
  12: { name: "annotations", type: { map: "string" } },
  13: { name: "ownerReferences", type: OWNER_REFERENCE, repeated: true },
  14: { name: "finalizers", type: "string", repeated: true },
};
const KINDS: Record<string, Schema> = {
  "v1/ConfigMap": {
    1: { name: "metadata", type: OBJECT_META },
    2: { name: "data", type: { map: "string" } },
    3: { name: "binaryData", type: { map: "bytes" } },
    4: { name: "immutable", type: "bool" },
  },
  "v1/Secret": {
    1: { name: "metadata", type: OBJECT_META },
    2: { name: "data", type: { map: "bytes" } },
    3: { name: "type", type: "string" },
    4: { name: "stringData", type: { map: "string" } },
    5: { name: "immutable", type: "bool" },
  },
  "v1/Namespace": {
    1: { name: "metadata", type: OBJECT_META },
    2: { name: "spec", type: { 1: { name: "finalizers", type: "string", repeated: true } } },
    3: { name: "status", type: { 1: { name: "phase", type: "string" } } },
  },
};

class Reader {
  #at = 0;
  constructor(readonly bytes: Uint8Array) {}
  get done(): boolean {
    return this.#at >= this.bytes.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n;; shift += 7n) {
      if (this.#at >= this.bytes.length) throw new Error("truncated varint");
      const byte = this.bytes[this.#at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      if (shift > 63n) throw new Error("varint too long");
    }
  }
  take(length: number): Uint8Array {
    if (this.#at + length > this.bytes.length) throw new Error("truncated field");
    const out = this.bytes.subarray(this.#at, this.#at + length);
    this.#at += length;
    return out;
  }
  /** The next field: its number and value (a varint, or bytes for length-delimited ones). */
  field(): { number: number; value: bigint | Uint8Array } {
    const key = this.varint();
    const number = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0:
        return { number, value: this.varint() };
      case 1:
        return { number, value: this.take(8) };
      case 2:
        return { number, value: this.take(Number(this.varint())) };
      case 5:
        return { number, value: this.take(4) };
      default:
        throw new Error(`unsupported wire type in field ${number}`);
    }
  }
}

const text = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(bytes);
const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

function decodeMessage(bytes: Uint8Array, schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const reader = new Reader(bytes);
  while (!reader.done) {
    const { number, value } = reader.field();
    const field = schema[number];
    if (!field) continue; // fields the simulator does not model are dropped
    let decoded: unknown;
    const type = field.type;
    if (type === "string") decoded = text(value as Uint8Array);
    else if (type === "bytes") decoded = base64(value as Uint8Array);
    else if (type === "int64") decoded = Number(BigInt.asIntN(64, value as bigint));
    else if (type === "bool") decoded = value !== 0n;
    else if (type === "time") {
      const time = decodeMessage(value as Uint8Array, TIME) as { seconds?: number };
      decoded = new Date((time.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    } else if ("map" in type) {
      const entry = new Reader(value as Uint8Array);
      let key = "";
      let item = "";
      while (!entry.done) {
        const part = entry.field();
        if (part.number === 1) key = text(part.value as Uint8Array);
        if (part.number === 2) {
          item = type.map === "bytes"
            ? base64(part.value as Uint8Array)
            : text(part.value as Uint8Array);
        }
      }
      const map = (out[field.name] ??= {}) as Record<string, string>;
      map[key] = item;
      continue;
    } else decoded = decodeMessage(value as Uint8Array, type as Schema);
    if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(decoded);
    else out[field.name] = decoded;
  }
  // JSON omits empty strings (omitempty): so does the decoded form.
  for (const [k, v] of Object.entries(out)) if (v === "") delete out[k];
  return out;
}

/**
 * Decodes a protobuf-encoded object.
 *
 * @throws {StatusError} 415 for a kind the simulator cannot decode, 400 for a malformed body.
 */
export function decodeProtobufObject(bytes: Uint8Array): KubeObject {
  const magic = [0x6b, 0x38, 0x73, 0x00];
  if (bytes.length < 4 || magic.some((b, i) => bytes[i] !== b)) {
    throw errors.badRequest("the protobuf body does not start with the k8s magic number");
  }
  let apiVersion = "";
  let kind = "";
  let raw: Uint8Array | undefined;
  try {
    const reader = new Reader(bytes.subarray(4));
    while (!reader.done) {
      const { number, value } = reader.field();
      if (number === 1) {
        const meta = decodeMessage(value as Uint8Array, {
          1: { name: "apiVersion", type: "string" },
          2: { name: "kind", type: "string" },
        }) as { apiVersion?: string; kind?: string };
        apiVersion = meta.apiVersion ?? "";
        kind = meta.kind ?? "";
      } else if (number === 2) raw = value as Uint8Array;
    }
  } catch (error) {
    throw errors.badRequest(`the protobuf body could not be decoded: ${(error as Error).message}`);
  }
  const schema = KINDS[`${apiVersion}/${kind}`];
  if (!schema || !raw) {
    throw new StatusError(failure(
      415,
      "UnsupportedMediaType",
      `the simulator decodes ${PROTOBUF_MEDIA} for v1 Namespace, ConfigMap and Secret only, not ${apiVersion} ${kind}; send application/json (kubectl apply -f)`,
    ));
  }
  try {
    return { apiVersion, kind, ...decodeMessage(raw, schema) } as KubeObject;
  } catch (error) {
    throw errors.badRequest(`the protobuf body could not be decoded: ${(error as Error).message}`);
  }
}
