import assert from "node:assert/strict";

/** A module as `deno info --json` describes it. */
export interface InfoModule {
  specifier: string;
  kind?: string;
  dependencies?: { specifier: string; code?: { specifier: string }; isDynamic?: boolean }[];
}

/** `deno info --json <entry>`, run from the repository's root. */
export async function denoInfo(entry: string): Promise<{ roots: string[]; modules: InfoModule[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
    cwd: new URL("../..", import.meta.url).pathname,
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
