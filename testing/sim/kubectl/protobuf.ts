/**
 * Decodes the Kubernetes protobuf encoding of the built-in objects kubectl sends (its generator
 * commands, `kubectl scale`, `kubectl auth can-i`): kubectl sends built-in kinds as
 * `application/vnd.kubernetes.protobuf` and does not fall back to JSON, so the simulator reads them
 * as kube-apiserver does. The envelope is `k8s\0` and a `runtime.Unknown` message holding the type
 * and the object's own message, decoded by the layouts of k8s.io/api's generated.proto.
 *
 * @module
 */

import type { KubeObject } from "../../../src/shared/kube_object.ts";
import { errors, failure, StatusError } from "../status.ts";
import { PROTOBUF_MEDIA } from "../media_types.ts";
import layouts from "../data/protobuf_messages.json" with { type: "json" };

type Field = [number, string, string, "repeated" | "map" | "one", string?, 1?];
interface Messages {
  kinds: Record<string, string>;
  messages: Record<string, Field[]>;
}

/** Message layouts from k8s.io/api's generated.proto (`deno task gen:protobuf` writes them). */
const MESSAGES = layouts as unknown as Messages;
const BY_NUMBER = new Map<string, Map<number, Field>>(
  Object.entries(MESSAGES.messages).map((
    [name, fields],
  ) => [name, new Map(fields.map((f) => [f[0], f]))]),
);
const META = "k8s.io.apimachinery.pkg.apis.meta.v1";

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
const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

function scalar(type: string, value: bigint | Uint8Array): unknown {
  switch (type) {
    case "string":
      return text(value as Uint8Array);
    case "bytes":
      return base64(value as Uint8Array);
    case "bool":
      return value !== 0n;
    case "int32":
      return Number(BigInt.asIntN(32, value as bigint));
    case "int64":
      return Number(BigInt.asIntN(64, value as bigint));
    case "double":
      return view(value as Uint8Array).getFloat64(0, true);
    case "float":
      return view(value as Uint8Array).getFloat32(0, true);
    default:
      return decodeMessage(value as Uint8Array, type);
  }
}

/** How Kubernetes writes a few types in JSON, unlike their messages. */
function toJson(type: string, message: Record<string, unknown>): unknown {
  switch (type) {
    case `${META}.Time`:
    case `${META}.MicroTime`: {
      const seconds = Number(message.seconds ?? 0);
      const nanos = Number(message.nanos ?? 0);
      if (seconds === 0 && nanos === 0) return undefined; // the zero time is null in JSON
      const iso = new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, "");
      return type.endsWith("MicroTime")
        ? `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z`
        : `${iso}Z`;
    }
    case `${META}.Duration`:
      return goDuration(Number(message.duration ?? 0));
    case `${META}.FieldsV1`:
    case "k8s.io.apimachinery.pkg.runtime.RawExtension": {
      const raw = (message.Raw ?? message.raw) as string | undefined;
      return raw === undefined ? undefined : JSON.parse(atob(raw));
    }
    case "k8s.io.apimachinery.pkg.api.resource.Quantity":
      return message.string;
    case "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
      return Number(message.type ?? 0) === 1 ? message.strVal ?? "" : message.intVal ?? 0;
    default:
      return message;
  }
}

function goDuration(nanoseconds: number): string {
  if (nanoseconds === 0) return "0s";
  let seconds = nanoseconds / 1e9;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  return `${hours ? `${hours}h` : ""}${hours || minutes ? `${minutes}m` : ""}${seconds}s`;
}

function decodeMessage(bytes: Uint8Array, type: string): unknown {
  const fields = BY_NUMBER.get(type);
  if (!fields) throw new Error(`no layout for ${type}`);
  const out: Record<string, unknown> = {};
  const reader = new Reader(bytes);
  while (!reader.done) {
    const { number, value } = reader.field();
    const field = fields.get(number);
    if (!field) continue; // a field newer than our layouts: dropped, as an older server would
    const [, name, fieldType, cardinality, keyType, omitZero] = field;
    if (cardinality === "map") {
      const entry = new Reader(value as Uint8Array);
      let key: unknown = "";
      let item: unknown = fieldType === "string" ? "" : undefined;
      while (!entry.done) {
        const part = entry.field();
        if (part.number === 1) key = scalar(keyType ?? "string", part.value);
        if (part.number === 2) item = scalar(fieldType, part.value);
      }
      ((out[name] ??= {}) as Record<string, unknown>)[String(key)] = item;
      continue;
    }
    const decoded = scalar(fieldType, value);
    if (decoded === undefined) continue;
    // Go's encoder writes zero values that JSON's omitempty leaves out: so do we.
    if (omitZero && (decoded === "" || decoded === 0 || decoded === false)) continue;
    if (cardinality === "repeated") ((out[name] ??= []) as unknown[]).push(decoded);
    else out[name] = decoded;
  }
  return toJson(type, out);
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
        const meta = decodeMessage(
          value as Uint8Array,
          "k8s.io.apimachinery.pkg.runtime.TypeMeta",
        ) as { apiVersion?: string; kind?: string };
        apiVersion = meta.apiVersion ?? "";
        kind = meta.kind ?? "";
      } else if (number === 2) raw = value as Uint8Array;
    }
  } catch (error) {
    throw errors.badRequest(`the protobuf body could not be decoded: ${(error as Error).message}`);
  }
  const message = MESSAGES.kinds[`${apiVersion} ${kind}`];
  if (!message || !raw) {
    throw new StatusError(failure(
      415,
      "UnsupportedMediaType",
      `the simulator decodes ${PROTOBUF_MEDIA} for the kinds it serves, not ${apiVersion} ${kind}; send application/json`,
    ));
  }
  try {
    return { apiVersion, kind, ...(decodeMessage(raw, message) as object) } as KubeObject;
  } catch (error) {
    throw errors.badRequest(`the protobuf body could not be decoded: ${(error as Error).message}`);
  }
}
