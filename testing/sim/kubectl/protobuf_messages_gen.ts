/**
 * Writes `data/protobuf_messages.json`: the protobuf message layouts of the kinds the simulator decodes,
 * read from the `generated.proto` files of the Kubernetes API modules (the same versions the real
 * fleet builds). Run by `deno task gen:protobuf`; needs Go (the modules come from the Go module
 * proxy). Not loaded by the simulator, only its output is.
 *
 * @module
 */

const VERSION = "v0.37.2";

/** Kinds whose bodies the simulator decodes: `apiVersion kind` to the message's full name. */
const KINDS: Record<string, string> = {};
for (
  const kind of [
    "Namespace",
    "Node",
    "Pod",
    "Service",
    "ConfigMap",
    "PodTemplate",
    "Secret",
    "Event",
  ]
) KINDS[`v1 ${kind}`] = `k8s.io.api.core.v1.${kind}`;
for (const kind of ["Deployment", "ReplicaSet"]) {
  KINDS[`apps/v1 ${kind}`] = `k8s.io.api.apps.v1.${kind}`;
}
KINDS["coordination.k8s.io/v1 Lease"] = "k8s.io.api.coordination.v1.Lease";
for (const kind of ["SelfSubjectAccessReview", "SelfSubjectRulesReview"]) {
  KINDS[`authorization.k8s.io/v1 ${kind}`] = `k8s.io.api.authorization.v1.${kind}`;
}
KINDS["authentication.k8s.io/v1 SelfSubjectReview"] =
  "k8s.io.api.authentication.v1.SelfSubjectReview";
KINDS["autoscaling/v1 Scale"] = "k8s.io.api.autoscaling.v1.Scale";
KINDS["v1 DeleteOptions"] = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";

const FILES = [
  "k8s.io/api/core/v1",
  "k8s.io/api/apps/v1",
  "k8s.io/api/coordination/v1",
  "k8s.io/api/authorization/v1",
  "k8s.io/api/authentication/v1",
  "k8s.io/api/autoscaling/v1",
  "k8s.io/apimachinery/pkg/apis/meta/v1",
  "k8s.io/apimachinery/pkg/api/resource",
  "k8s.io/apimachinery/pkg/util/intstr",
  "k8s.io/apimachinery/pkg/runtime",
  "k8s.io/apimachinery/pkg/runtime/schema",
];

/**
 * A field: number, JSON name, type (a scalar or a message's full name), how it repeats, a map's key
 * type, and `1` when a zero value means "absent" (a non-pointer Go field tagged `omitempty`: Go's
 * protobuf encoder writes it anyway, its JSON encoder leaves it out).
 */
type Field = [number, string, string, "repeated" | "map" | "one", string?, 1?];

/** From the Go structs' tags: per struct, per field number, the JSON name and omitempty-ness. */
type GoFields = Map<string, Map<number, { json: string; omitZero: boolean }>>;

async function readGoFields(dir: string, pkg: string, into: GoFields): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".go") || entry.name.endsWith("_test.go")) continue;
    let struct: string | undefined;
    for (const line of (await Deno.readTextFile(`${dir}/${entry.name}`)).split("\n")) {
      const open = /^type (\w+) struct \{/.exec(line);
      if (open) {
        struct = `${pkg}.${open[1]}`;
        continue;
      }
      if (line.startsWith("}")) struct = undefined;
      const tagged = /^\s+\w+\s+(\S+)\s+`.*protobuf:"\w+,(\d+),/.exec(line);
      if (!struct || !tagged) continue;
      const json = /json:"([^"]*)"/.exec(line)?.[1] ?? "";
      const [name, ...options] = json.split(",");
      const goType = tagged[1]!;
      const fields = into.get(struct) ?? new Map();
      fields.set(Number(tagged[2]), {
        json: name ?? "",
        omitZero: options.includes("omitempty") && !/^(\*|\[\]|map\[)/.test(goType),
      });
      into.set(struct, fields);
    }
  }
}

const SCALARS = new Set(["string", "bytes", "bool", "int32", "int64", "double", "float"]);

async function moduleDir(module: string): Promise<string> {
  const output = await new Deno.Command("go", {
    args: ["mod", "download", "-json", `${module}@${VERSION}`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`go mod download ${module}@${VERSION} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout)).Dir;
}

function parse(text: string, messages: Map<string, Field[]>): void {
  const pkg = /^package ([\w.]+);/m.exec(text)![1]!;
  const qualify = (type: string) =>
    SCALARS.has(type) ? type : type.includes(".") ? type.replace(/^\./, "") : `${pkg}.${type}`;
  let current: Field[] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\/\/.*$/, "").trim();
    const open = /^message (\w+) \{$/.exec(line);
    if (open) {
      current = [];
      messages.set(`${pkg}.${open[1]}`, current);
      continue;
    }
    if (line === "}") {
      current = undefined;
      continue;
    }
    if (!current) continue;
    const map = /^map<(\w+), ?([\w.]+)> (\w+) = (\d+);$/.exec(line);
    if (map) {
      current.push([Number(map[4]), map[3]!, qualify(map[2]!), "map", map[1]!]);
      continue;
    }
    const field = /^(optional|repeated) ([\w.]+) (\w+) = (\d+);$/.exec(line);
    if (field) {
      current.push([
        Number(field[4]),
        field[3]!,
        qualify(field[2]!),
        field[1] === "repeated" ? "repeated" : "one",
      ]);
    }
  }
}

const [api, apimachinery] = [await moduleDir("k8s.io/api"), await moduleDir("k8s.io/apimachinery")];
const messages = new Map<string, Field[]>();
const goFields: GoFields = new Map();
for (const path of FILES) {
  const dir = path.startsWith("k8s.io/api/")
    ? `${api}/${path.slice("k8s.io/api/".length)}`
    : `${apimachinery}/${path.slice("k8s.io/apimachinery/".length)}`;
  parse(await Deno.readTextFile(`${dir}/generated.proto`), messages);
  await readGoFields(dir, path.replaceAll("/", "."), goFields);
}
for (const [name, fields] of messages) {
  const tags = goFields.get(name);
  for (const field of fields) {
    const tag = tags?.get(field[0]);
    if (!tag) continue;
    if (tag.json && tag.json !== "-") field[1] = tag.json;
    if (tag.omitZero) field[5] = 1;
  }
}

// Keep what the kinds reach.
const kept: Record<string, Field[]> = {};
const pending = [...Object.values(KINDS), "k8s.io.apimachinery.pkg.runtime.TypeMeta"];
while (pending.length > 0) {
  const name = pending.pop()!;
  if (kept[name]) continue;
  const fields = messages.get(name);
  if (!fields) throw new Error(`message ${name} not found`);
  kept[name] = fields;
  for (const field of fields) if (!SCALARS.has(field[2])) pending.push(field[2]);
}
const sorted = Object.fromEntries(Object.entries(kept).sort(([a], [b]) => a.localeCompare(b)));
const out = new URL("../data/protobuf_messages.json", import.meta.url);
await Deno.writeTextFile(
  out,
  JSON.stringify({
    source: `k8s.io/api ${VERSION} generated.proto`,
    kinds: KINDS,
    messages: sorted,
  }) +
    "\n",
);
console.log(
  `${Object.keys(sorted).length} messages for ${
    Object.keys(KINDS).length
  } kinds -> ${out.pathname}`,
);
