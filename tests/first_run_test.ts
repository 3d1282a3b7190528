/**
 * The first run works: a program started without Deno's `worker-options` feature connects with
 * inherited permissions and one warning, instead of Deno ending the process with code 70.
 */
import assert from "node:assert/strict";

const project = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
const program = new URL("./fixtures/first_run/main.ts", import.meta.url).pathname;

interface Outcome {
  code: number;
  result: {
    connected: boolean;
    nodes?: number;
    code?: string;
    message?: string;
    warnings: string[];
  };
  stderr: string;
}

/** Runs the program with a config of the project's imports, with or without the feature. */
async function firstRun(
  config: { unstable?: string[] },
  how: "discovered" | "--config",
  args: string[] = [],
): Promise<Outcome> {
  const dir = await Deno.makeTempDir({ prefix: "first-run-" });
  try {
    const configPath = `${dir}/deno.json`;
    await Deno.writeTextFile(configPath, JSON.stringify({ imports: project.imports, ...config }));
    // Discovery starts at the main module's folder: put the program there.
    const main = how === "discovered" ? `${dir}/fixtures/first_run/main.ts` : program;
    if (how === "discovered") {
      await Deno.mkdir(`${dir}/fixtures/first_run`, { recursive: true });
      const source = await Deno.readTextFile(program);
      const root = new URL("../", import.meta.url).href;
      await Deno.writeTextFile(main, source.replaceAll("../../../", root));
    }
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-lock",
        ...(how === "--config" ? ["--config", configPath] : []),
        main,
        ...args,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    assert.ok(line.startsWith("{"), `exit ${output.code}; stdout ${stdout}; stderr ${stderr}`);
    return { code: output.code, result: JSON.parse(line), stderr };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("first run without worker-options: connects with inherited permissions and one warning", async () => {
  const { code, result, stderr } = await firstRun({}, "discovered");
  assert.equal(code, 0, stderr);
  assert.equal(result.connected, true, result.message ?? "");
  assert.ok(result.nodes! > 0, "the cached Node list is served");
  assert.equal(result.warnings.length, 1, result.warnings.join("\n"));
  assert.match(result.warnings[0]!, /inherit this process's permissions/);
  assert.match(result.warnings[0]!, /"unstable": \["worker-options"\]/);
  assert.match(result.warnings[0]!, /--unstable-worker-options/);
});

Deno.test("first run with worker-options in deno.json: least-privilege workers, no warning", async () => {
  const { code, result, stderr } = await firstRun({ unstable: ["worker-options"] }, "discovered");
  assert.equal(code, 0, stderr);
  assert.equal(result.connected, true, result.message ?? "");
  assert.deepEqual(result.warnings, []);
});

Deno.test("--config naming a file with worker-options is followed", async () => {
  const { code, result, stderr } = await firstRun({ unstable: ["worker-options"] }, "--config");
  assert.equal(code, 0, stderr);
  assert.equal(result.connected, true, result.message ?? "");
  assert.deepEqual(result.warnings, []);
});

Deno.test('workerPermissions "least" without worker-options: setup rejects, naming the flag and the option', async () => {
  const { code, result, stderr } = await firstRun({}, "--config", ["least"]);
  assert.equal(code, 0, stderr);
  assert.equal(result.connected, false);
  assert.equal(result.code, "UnstableFlagMissing");
  assert.match(result.message!, /"unstable": \["worker-options"\]/);
  assert.match(result.message!, /--unstable-worker-options/);
  assert.match(result.message!, /workerPermissions: "inherit"/);
});
