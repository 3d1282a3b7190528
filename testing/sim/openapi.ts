/**
 * The schemas of a simulated cluster's kinds: the OpenAPI v3 documents kube-apiserver has for the
 * built-in kinds and Cluster API's `Cluster` (taken from a real server by `deno task gen:openapi`),
 * a generated one for other registered kinds, and the field validation every write goes through
 * (`fieldValidation`: unknown fields are dropped with a warning, or refused under `Strict`).
 * Serving the documents themselves is kubectl's part (`kubectl/openapi_documents.ts`).
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";
import { resourceId, type ResourceType } from "./resource_types.ts";

type Schema = {
  $ref?: string;
  allOf?: Schema[];
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-group-version-kind"?: { group: string; version: string; kind: string }[];
};
/** An OpenAPI v3 document. */
export interface Document {
  paths: Record<string, unknown>;
  components: { schemas: Record<string, Schema> };
}

let recorded: Promise<Record<string, Document>> | undefined;
/** The real server's documents, parsed once per process on first use (1.7 MB). */
function recordedDocuments(): Promise<Record<string, Document>> {
  recorded ??= import("./data/openapi_v3.json", { with: { type: "json" } }).then((m) =>
    m.default as unknown as Record<string, Document>
  );
  return recorded;
}

/** `api/v1`, `apis/apps/v1`: where a group-version's document lives under `/openapi/v3/`. */
export function documentPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";

/** A document for registered kinds the real server's documents do not have: any fields allowed. */
function generatedDocument(
  group: string,
  version: string,
  types: readonly ResourceType[],
  core: Document,
): Document {
  const schemas: Record<string, Schema> = {};
  const paths: Record<string, unknown> = {};
  // ObjectMeta and what it reaches, from the core document.
  const pending = [`${META}.ObjectMeta`];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (schemas[name]) continue;
    schemas[name] = core.components.schemas[name]!;
    for (
      const ref of JSON.stringify(schemas[name]).matchAll(/#\/components\/schemas\/([\w.-]+)/g)
    ) {
      pending.push(ref[1]!);
    }
  }
  const reversed = group.split(".").reverse().join(".");
  for (const type of types) {
    const name = `${reversed}.${version}.${type.kind}`;
    const gvk = [{ group, version, kind: type.kind }];
    schemas[name] = {
      type: "object",
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: { allOf: [{ $ref: `#/components/schemas/${META}.ObjectMeta` }] },
      },
      "x-kubernetes-preserve-unknown-fields": true,
      "x-kubernetes-group-version-kind": gvk,
    };
    const parameters = ["dryRun", "fieldManager", "fieldValidation"].map((param) => ({
      name: param,
      in: "query",
      schema: { type: "string", uniqueItems: true },
    }));
    const body = {
      content: { "application/json": { schema: { $ref: `#/components/schemas/${name}` } } },
    };
    const operation = (verb: string) => ({
      operationId: `${verb}${type.kind}`,
      parameters,
      responses: { "200": { description: "OK", ...body } },
      "x-kubernetes-action": verb,
      "x-kubernetes-group-version-kind": gvk[0],
    });
    const base = type.namespaced
      ? `/apis/${group}/${version}/namespaces/{namespace}/${type.plural}`
      : `/apis/${group}/${version}/${type.plural}`;
    paths[base] = { get: operation("list"), post: { ...operation("post"), requestBody: body } };
    paths[`${base}/{name}`] = {
      get: operation("get"),
      put: { ...operation("put"), requestBody: body },
      patch: { ...operation("patch"), requestBody: body },
      delete: operation("delete"),
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.37.2" },
    paths,
    components: { schemas },
  } as Document;
}

/** The OpenAPI v3 documents of one simulated cluster, with their hashes. */
export class OpenApi {
  readonly #types: () => readonly ResourceType[];
  // Documents depend only on the kinds served: built once per set of kinds, not per request.
  readonly #documents = new Map<string, Promise<Document | undefined>>();
  readonly #roots = new WeakMap<Document, Map<string, Schema | undefined>>();

  /** @param types The kinds the cluster serves now (removed kinds leave its documents). */
  constructor(types: () => readonly ResourceType[]) {
    this.#types = types;
  }

  /** Where the documents of the group-versions served now live (`api/v1`, `apis/apps/v1`...). */
  paths(): string[] {
    return [...this.#groupVersions().keys()];
  }

  #groupVersions(): Map<string, { group: string; version: string; types: ResourceType[] }> {
    const out = new Map<string, { group: string; version: string; types: ResourceType[] }>();
    for (const type of this.#types()) {
      for (const version of type.versions) {
        const path = documentPath(type.group, version);
        const entry = out.get(path) ?? { group: type.group, version, types: [] };
        entry.types.push(type);
        out.set(path, entry);
      }
    }
    return out;
  }

  #key(path: string): string {
    return `${path} ${this.#types().map(resourceId).join()}`;
  }

  /** A group-version's document, or `undefined` when nothing is served there. */
  document(path: string): Promise<Document | undefined> {
    const key = this.#key(path);
    let document = this.#documents.get(key);
    if (!document) {
      document = this.#build(path);
      this.#documents.set(key, document);
    }
    return document;
  }

  async #build(path: string): Promise<Document | undefined> {
    const entry = this.#groupVersions().get(path);
    if (!entry) return undefined;
    const recorded = await recordedDocuments();
    const known = recorded[path];
    const unknownTypes = entry.types.filter((t) =>
      !known ||
      !Object.values(known.components.schemas).some((s) =>
        s["x-kubernetes-group-version-kind"]?.some((gvk) =>
          gvk.kind === t.kind && gvk.group === t.group
        )
      )
    );
    if (unknownTypes.length === 0) return known;
    return generatedDocument(entry.group, entry.version, unknownTypes, recorded["api/v1"]!);
  }

  /**
   * The fields of `object` its kind's schema does not know, as kube-apiserver's strict decoding
   * names them (`spec.template.spec.containers[0].imagePolicy`). Patch directives (`$patch`,
   * `$setElementOrder/...`) are not fields.
   */
  async unknownFields(type: ResourceType, version: string, object: KubeObject): Promise<string[]> {
    const document = await this.document(documentPath(type.group, version));
    if (!document) return [];
    const schemas = document.components.schemas;
    const roots = this.#roots.get(document) ?? new Map<string, Schema | undefined>();
    this.#roots.set(document, roots);
    const gvk = `${type.group}/${version}/${type.kind}`;
    if (!roots.has(gvk)) {
      roots.set(
        gvk,
        Object.values(schemas).find((s) =>
          s["x-kubernetes-group-version-kind"]?.some((g) =>
            g.group === type.group && g.version === version && g.kind === type.kind
          )
        ),
      );
    }
    const root = roots.get(gvk);
    if (!root) return [];
    const resolve = (schema: Schema | undefined): Schema | undefined => {
      for (let depth = 0; schema && depth < 8; depth++) {
        if (schema.$ref) schema = schemas[schema.$ref.split("/").pop()!];
        else if (schema.allOf?.length && !schema.properties) {
          const { allOf, ...rest } = schema;
          schema = { ...rest, ...resolve(allOf[0]) };
        } else return schema;
      }
      return schema;
    };
    const unknown: string[] = [];
    const walk = (value: unknown, schema: Schema | undefined, path: string) => {
      schema = resolve(schema);
      if (!schema || value === null || typeof value !== "object") return;
      if (Array.isArray(value)) {
        value.forEach((item, i) => walk(item, schema.items, `${path}[${i}]`));
        return;
      }
      if (schema["x-kubernetes-preserve-unknown-fields"]) return;
      for (const [key, inner] of Object.entries(value)) {
        if (key.startsWith("$")) continue;
        const at = path ? `${path}.${key}` : key;
        if (schema.properties?.[key]) walk(inner, schema.properties[key], at);
        else if (typeof schema.additionalProperties === "object") {
          walk(inner, schema.additionalProperties, at);
        } else if (schema.properties && schema.additionalProperties === undefined) {
          unknown.push(at);
        }
      }
    };
    walk(object, root, "");
    return unknown;
  }
}
