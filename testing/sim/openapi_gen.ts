/**
 * Writes `data/openapi_v3.json`: the OpenAPI v3 documents of the group-versions the simulator
 * serves, as a real kube-apiserver (the real fleet's, `testing/real/`) serves them, cut down to the
 * simulator's resources and the schemas they reach. Run by `deno task gen:openapi`; needs Go.
 * Not loaded by the simulator, only its output is.
 *
 * @module
 */

import { RealFleet } from "../real/fleet.ts";
import { BUILTIN_TYPES, CLUSTER_TYPE, type ResourceType } from "./resource_types.ts";
import { REVIEW_TYPES } from "./reviews.ts";

type Json = Record<string, unknown>;

const types: ResourceType[] = [...BUILTIN_TYPES, ...REVIEW_TYPES, CLUSTER_TYPE];
const groupVersions = new Map<string, Set<string>>();
for (const type of types) {
  for (const version of type.versions) {
    const key = type.group ? `apis/${type.group}/${version}` : `api/${version}`;
    const resources = groupVersions.get(key) ?? new Set();
    resources.add(type.plural);
    if (type.statusSubresource) resources.add(`${type.plural}/status`);
    if (type.scale) resources.add(`${type.plural}/scale`);
    groupVersions.set(key, resources);
  }
}

/** The resource a path is about: `pods`, `pods/status`, `namespaces`; `""` for the GV's root. */
function resourceOf(path: string, prefix: string): string {
  let rest = path.slice(prefix.length).split("/").filter(Boolean);
  if (rest[0] === "watch") rest = rest.slice(1);
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  if (rest.length === 0) return "";
  return rest.length >= 3 ? `${rest[0]}/${rest[2]}` : rest[0]!;
}

function refs(value: unknown, into: Set<string>): void {
  if (Array.isArray(value)) { for (const item of value) refs(item, into); }
  else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      if (key === "$ref" && typeof inner === "string") into.add(inner.split("/").pop()!);
      else refs(inner, into);
    }
  }
}

function cut(doc: Json, gv: string, resources: Set<string>): Json {
  const prefix = `/${gv}/`;
  const paths = Object.fromEntries(
    Object.entries(doc.paths as Json).filter(([path]) => {
      const resource = resourceOf(path, prefix);
      return resource === "" || resources.has(resource);
    }),
  );
  const all = (doc.components as { schemas: Json }).schemas;
  const keep = new Set<string>();
  refs(paths, keep);
  for (const pending = [...keep]; pending.length > 0;) {
    const found = new Set<string>();
    refs(all[pending.pop()!], found);
    for (const name of found) {
      if (!keep.has(name)) {
        keep.add(name);
        pending.push(name);
      }
    }
  }
  const schemas = Object.fromEntries(
    Object.entries(all).filter(([name]) => keep.has(name)).sort(([a], [b]) => a.localeCompare(b)),
  );
  return { ...doc, paths, components: { ...(doc.components as Json), schemas } };
}

await using fleet = await RealFleet.start({
  clusters: 0,
  progress: (line) => console.error(line),
});
const out: Record<string, Json> = {};
for (const [gv, resources] of groupVersions) {
  // A CRD's document is published a few seconds after the CRD is established.
  let doc: Json | undefined;
  for (let attempt = 0; !doc; attempt++) {
    try {
      doc = await fleet.management.request<Json>("GET", `/openapi/v3/${gv}`);
    } catch (error) {
      if (attempt >= 60) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  out[gv] = cut(doc, gv, resources);
  const kept = Object.keys(out[gv].paths as Json).length;
  console.error(
    `${gv}: ${kept} paths, ${
      Object.keys((out[gv].components as { schemas: Json }).schemas).length
    } schemas`,
  );
}
const file = new URL("./data/openapi_v3.json", import.meta.url);
await Deno.writeTextFile(file, JSON.stringify(out) + "\n");
console.error(
  `wrote ${file.pathname} (${(await Deno.stat(file)).size} bytes) for ${
    [...groupVersions.keys()].map((gv) => gv).join(", ")
  }`,
);
