/**
 * Writes `data/openapi_v3.json` and `data/openapi_v2.json`: the OpenAPI documents of the
 * group-versions the simulator serves, as a real kube-apiserver (the real fleet's, `testing/real/`) serves them, cut down to the
 * simulator's resources and the schemas they reach. Run by `deno task gen:openapi`; needs Go.
 * Not loaded by the simulator, only its output is.
 *
 * @module
 */

import { RealFleet } from "../../real/fleet.ts";
import { BUILTIN_TYPES, CLUSTER_TYPE, type ResourceType } from "../resource_types.ts";
import { REVIEW_TYPES } from "../resource_types.ts";

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

/** Names of what `value` refers to under `#/<section>/` (`components/schemas`, `definitions`). */
function refs(value: unknown, into: Set<string>, section: string): void {
  if (Array.isArray(value)) {
    for (const item of value) refs(item, into, section);
  } else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      if (key === "$ref" && typeof inner === "string") {
        if (inner.startsWith(`#/${section}/`)) into.add(inner.slice(section.length + 3));
      } else refs(inner, into, section);
    }
  }
}

/** Everything `roots` reach in `all`, following references under `#/<section>/`. */
function reachable(roots: unknown, all: Json, section: string): Json {
  const keep = new Set<string>();
  refs(roots, keep, section);
  for (const pending = [...keep]; pending.length > 0;) {
    const found = new Set<string>();
    refs(all[pending.pop()!], found, section);
    for (const name of found) {
      if (!keep.has(name)) {
        keep.add(name);
        pending.push(name);
      }
    }
  }
  return Object.fromEntries(
    Object.entries(all).filter(([name]) => keep.has(name)).sort(([a], [b]) => a.localeCompare(b)),
  );
}

/** The v2 document (one for every group-version) cut to the simulator's resources. */
function cutV2(doc: Json): Json {
  const paths = Object.fromEntries(
    Object.entries(doc.paths as Json).filter(([path]) => {
      const gv = [...groupVersions.keys()].find((gv) => path.startsWith(`/${gv}/`));
      if (!gv) return false;
      const resource = resourceOf(path, `/${gv}/`);
      return resource === "" || groupVersions.get(gv)!.has(resource);
    }),
  );
  return {
    ...doc,
    paths,
    definitions: reachable(paths, doc.definitions as Json, "definitions"),
    parameters: reachable(paths, doc.parameters as Json, "parameters"),
  };
}

function cut(doc: Json, gv: string, resources: Set<string>): Json {
  const prefix = `/${gv}/`;
  const paths = Object.fromEntries(
    Object.entries(doc.paths as Json).filter(([path]) => {
      const resource = resourceOf(path, prefix);
      return resource === "" || resources.has(resource);
    }),
  );
  const schemas = reachable(
    paths,
    (doc.components as { schemas: Json }).schemas,
    "components/schemas",
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
const file = new URL("../data/openapi_v3.json", import.meta.url);
await Deno.writeTextFile(file, JSON.stringify(out) + "\n");
const v2 = cutV2(await fleet.management.request<Json>("GET", "/openapi/v2"));
const v2File = new URL("../data/openapi_v2.json", import.meta.url);
await Deno.writeTextFile(v2File, JSON.stringify(v2) + "\n");
console.error(
  `v2: ${Object.keys(v2.paths as Json).length} paths, ${
    Object.keys(v2.definitions as Json).length
  } definitions (${(await Deno.stat(v2File)).size} bytes)`,
);
console.error(
  `wrote ${file.pathname} (${(await Deno.stat(file)).size} bytes) for ${
    [...groupVersions.keys()].map((gv) => gv).join(", ")
  }`,
);
