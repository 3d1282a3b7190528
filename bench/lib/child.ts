/**
 * Runs a measurement in a child process of its own (what one leaves behind must not weigh on the
 * next) and reads its last stdout line as JSON.
 */

/**
 * @param script The child's module.
 * @param args Its arguments.
 * @param what What it measures, for the error when it fails.
 * @param v8Flags V8's flags (default: a 16 GB heap).
 */
export async function measureInChild<T>(
  script: URL,
  args: string[],
  what: string,
  v8Flags: string[] = ["--max-old-space-size=16384"],
): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `--v8-flags=${v8Flags.join(",")}`,
      script.pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (out.code !== 0 || !line.startsWith("{")) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(line) as T;
}
