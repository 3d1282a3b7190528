/**
 * `deno task test:matrix`: the support matrix. Runs the conformance cases and the library's
 * real-server suite against every supported Kubernetes release (each built once and cached) and
 * prints a Markdown table of what passed and how each server syncs informers (WatchList or pages).
 *
 * ```sh
 * deno task test:matrix            # every release
 * deno task test:matrix 1.31 1.37  # some
 * ```
 *
 * @module
 */

import { KUBERNETES_RELEASES, kubernetesRelease, realfleetBinary } from "./build.ts";

const root = new URL("../../", import.meta.url).pathname;
const wanted = Deno.args.length > 0 ? Deno.args : Object.keys(KUBERNETES_RELEASES);

interface Row {
  release: string;
  build: string;
  conformance: string;
  library: string;
  watchList: string;
  podGeneration: string;
}

function summary(text: string): string {
  const line = text.split("\n").reverse().find((l) => /\| \d+ passed/.test(l)) ?? "";
  const passed = /(\d+) passed(?: \((\d+) steps\))?/.exec(line);
  const failed = /(\d+) failed/.exec(line)?.[1] ?? "?";
  if (!passed) return "did not run";
  const steps = passed[2] ? ` (${passed[2]} steps)` : "";
  return failed === "0"
    ? `✓ ${passed[1]}${steps}`
    : `✗ ${failed} failed of ${Number(passed[1]) + Number(failed)}${steps}`;
}

async function suite(release: string, file: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", file],
    cwd: root,
    env: { CLUSTERCACHE_KUBERNETES: release, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  await Deno.writeTextFile(`${root}/.real-matrix-${release}-${file.split("/").pop()}.log`, text);
  return text;
}

const rows: Row[] = [];
for (const minor of wanted) {
  const release = kubernetesRelease(minor);
  const started = performance.now();
  let build: string;
  try {
    await realfleetBinary((line) => console.error(`[${release}] ${line}`), release);
    build = `${Math.round((performance.now() - started) / 1000)} s`;
  } catch (error) {
    rows.push({
      release,
      build: `✗ ${(error as Error).message.split("\n")[0]}`,
      conformance: "-",
      library: "-",
      watchList: "-",
      podGeneration: "-",
    });
    continue;
  }
  console.error(`[${release}] conformance...`);
  const conformance = await suite(release, "tests/real/conformance.ts");
  console.error(`[${release}] library...`);
  const library = await suite(release, "tests/real/library.ts");
  const watchList = /WatchList on kube-apiserver: refused/.test(conformance)
    ? "refused (422): paged lists"
    : /WatchList on kube-apiserver: streamed/.test(conformance)
    ? "streamed"
    : "?";
  const podGeneration = /Pod generation on kube-apiserver: tracked/.test(conformance)
    ? "tracked"
    : /Pod generation on kube-apiserver: not tracked/.test(conformance)
    ? "none"
    : "?";
  rows.push({
    release,
    build,
    conformance: summary(conformance),
    library: summary(library),
    watchList,
    podGeneration,
  });
  console.error(`[${release}] ${JSON.stringify(rows.at(-1))}`);
}

console.log(
  `\nSupport matrix, ${new Date().toISOString().slice(0, 10)}, Deno ${Deno.version.deno}:\n`,
);
console.log(
  "| Kubernetes | build (cached after) | conformance | library suite | initial lists | Pod generation |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  console.log(
    `| ${r.release} | ${r.build} | ${r.conformance} | ${r.library} | ${r.watchList} | ${r.podGeneration} |`,
  );
}
const failed = rows.some((r) =>
  r.build.startsWith("✗") || /✗|did not run/.test(r.conformance + r.library)
);
Deno.exit(failed ? 1 : 0);
