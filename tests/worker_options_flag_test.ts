import assert from "node:assert/strict";
import { ClusterCacheError } from "../src/shared/errors.ts";
import {
  readCommandLine,
  readConfig,
  stripJsonc,
  workerOptionsFlag,
} from "../src/main/sessions/worker_options_flag.ts";
import { chooseWorkerPermissions } from "../src/main/options.ts";

Deno.test("readCommandLine: Deno's flags before the script, not the script's own", () => {
  assert.deepEqual(readCommandLine(["deno", "run", "-A", "--unstable-worker-options", "main.ts"]), {
    flag: true,
    config: undefined,
  });
  assert.deepEqual(readCommandLine(["deno", "run", "main.ts", "--unstable-worker-options"]), {
    flag: false,
    config: undefined,
  });
  assert.deepEqual(
    readCommandLine(["deno", "run", "--config", "a/deno.json", "main.ts"]).config,
    "a/deno.json",
  );
  assert.deepEqual(readCommandLine(["deno", "run", "-c", "b.json", "main.ts"]).config, "b.json");
  assert.deepEqual(readCommandLine(["deno", "run", "--config=c.json", "main.ts"]).config, "c.json");
  assert.equal(readCommandLine(["deno", "run", "--no-config", "main.ts"]).config, null);
  // deno test takes many files; a flag may follow the first.
  assert.equal(
    readCommandLine(["deno", "test", "a_test.ts", "--unstable-worker-options"]).flag,
    true,
  );
  assert.equal(
    readCommandLine(["deno", "test", "a_test.ts", "--", "--unstable-worker-options"]).flag,
    false,
  );
});

Deno.test("readConfig reads deno.jsonc: comments, trailing commas, strings that look like comments", () => {
  const text = `{
    // the app's settings
    "imports": { "x": "https://example.com/a//b" }, /* a block
    comment */
    "unstable": ["kv", "worker-options",],
  }`;
  assert.equal(stripJsonc(`{"a": "/* not a comment */"}`), `{"a": "/* not a comment */"}`);
  assert.deepEqual(readConfig(text), { enables: true, workspace: false });
  assert.deepEqual(readConfig(`{"unstable": ["kv"], "workspace": ["a"]}`), {
    enables: false,
    workspace: true,
  });
  assert.equal(readConfig("not json"), undefined);
  assert.equal(readConfig("[]"), undefined);
});

Deno.test("chooseWorkerPermissions: least privilege when possible, never an exit", () => {
  const on = { state: "enabled", evidence: "--unstable-worker-options" } as const;
  const off = { state: "disabled", evidence: 'no "worker-options" in /app/deno.json' } as const;
  const unknown = { state: "unknown", evidence: "the command line cannot be read" } as const;
  assert.deepEqual(chooseWorkerPermissions(undefined, on), { permissions: "least" });
  for (const flag of [off, unknown]) {
    const choice = chooseWorkerPermissions(undefined, flag);
    assert.equal(choice.permissions, "inherit");
    assert.ok(choice.warning?.includes(flag.evidence));
  }
  assert.deepEqual(chooseWorkerPermissions("least", on), { permissions: "least" });
  assert.deepEqual(chooseWorkerPermissions("least", unknown), { permissions: "least" });
  assert.throws(
    () => chooseWorkerPermissions("least", off),
    (e) => e instanceof ClusterCacheError && e.code === "UnstableFlagMissing",
  );
  for (const flag of [on, off, unknown]) {
    assert.deepEqual(chooseWorkerPermissions("inherit", flag), { permissions: "inherit" });
  }
});

Deno.test("workerOptionsFlag sees this suite's deno.json", () => {
  assert.equal(workerOptionsFlag().state, "enabled");
});
