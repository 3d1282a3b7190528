import assert from "node:assert/strict";
import { denoInfo } from "./helpers/deno_info.ts";

/** The modules a worker loads at runtime, per `deno info` (type-only imports are not loaded). */
async function runtimeGraph(entry: string): Promise<{ modules: string[]; npm: string[] }> {
  const info = await denoInfo(entry);
  // Type-only imports appear as dependencies with a `type` but no `code` specifier: not loaded.
  const modules = info.modules.map((m) => m.specifier).filter((s) => !s.startsWith("npm:"));
  const npm = info.modules.flatMap((m) =>
    (m.dependencies ?? []).map((d) => d.code?.specifier ?? "")
  )
    .filter((s) => s.startsWith("npm:"));
  return { modules, npm };
}

Deno.test("the worker imports nothing from @kubernetes/client-node (or any npm package) at runtime", async () => {
  const { modules, npm } = await runtimeGraph("workers/cluster_worker.ts");
  assert.ok(modules.length > 5);
  assert.deepEqual(npm, [], `npm packages in the worker's runtime graph: ${npm.join(", ")}`);
});

Deno.test("the worker side loads only workers/ and src/shared/, never the main thread's src/main/", async () => {
  const { modules } = await runtimeGraph("workers/cluster_worker.ts");
  for (const specifier of modules) {
    // Deno's own node: modules are allowed: the pinned connection speaks HTTP on a node:tls socket
    // and checks the client key pair with node:crypto.
    if (["node:tls", "node:net", "node:http2", "node:crypto"].includes(specifier)) continue;
    assert.match(
      specifier,
      /^file:\/\/.*\/(workers|src\/shared)\/[a-z0-9_]+\.ts$/,
      `a module the worker must not load: ${specifier}`,
    );
  }
  // Both sides use the shared folder, and only the main thread its own.
  const main = await runtimeGraph("mod.ts");
  const shared = (m: string) => m.includes("/src/shared/");
  assert.ok(main.modules.some(shared) && modules.some(shared));
  for (const specifier of main.modules.filter((m) => m.includes("/workers/"))) {
    assert.fail(`the main thread loads a worker-side module: ${specifier}`);
  }
});

Deno.test("every module in src/shared/ is loaded by the worker (else it belongs in src/main/)", async () => {
  const { modules } = await runtimeGraph("workers/cluster_worker.ts");
  const dir = new URL("../src/shared/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".ts")) continue;
    assert.ok(
      modules.some((m) => m.endsWith(`/src/shared/${entry.name}`)),
      `src/shared/${entry.name} is not loaded by the worker`,
    );
  }
});

Deno.test("the import check flags a runtime import of client-node but not a type-only one", async () => {
  const dir = new URL("../tmp/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const probe = `${dir}worker_import_probe.ts`;
  await Deno.writeTextFile(
    probe,
    `import type { V1Pod } from "@kubernetes/client-node";\nimport { KubeConfig } from "@kubernetes/client-node";\nexport const x: V1Pod | KubeConfig | undefined = undefined;\n`,
  );
  try {
    const { npm } = await runtimeGraph(probe);
    assert.ok(npm.some((s) => s.includes("@kubernetes/client-node")), "the runtime import is seen");
    await Deno.writeTextFile(
      probe,
      `import type { V1Pod } from "@kubernetes/client-node";\nexport const x: V1Pod | undefined = undefined;\n`,
    );
    assert.deepEqual((await runtimeGraph(probe)).npm, [], "a type-only import is free");
  } finally {
    await Deno.remove(probe);
  }
});

Deno.test("the root module loads nothing of the status page: applications that do not mount it do not pay for it", async () => {
  const { modules } = await runtimeGraph("mod.ts");
  assert.deepEqual(modules.filter((m) => m.includes("/src/main/status/")), []);
  const status = await runtimeGraph("src/main/status/mod.ts");
  assert.ok(status.modules.some((m) => m.endsWith("/src/main/status/status_page.ts")));
});
