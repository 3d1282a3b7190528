/**
 * Main thread: whether this process may give a Worker its own permissions.
 *
 * Deno gates `new Worker(url, { deno: { permissions } })` behind the `worker-options` unstable
 * feature and, without it, exits the whole process with code 70 instead of throwing. No runtime API
 * tells whether the feature is on, so this reads the two places that turn it on: the command line
 * (`--unstable-worker-options`, from `/proc/self/cmdline`) and the `unstable` list of the config file
 * Deno uses (the one named by `--config`, else the nearest `deno.json`/`deno.jsonc` above the main
 * module). It answers "unknown" whenever it cannot read one of them.
 *
 * @module
 */

import type { WorkerOptionsFlag } from "../options.ts";

export type { WorkerOptionsFlag };

/** The command-line flag that lets workers take permissions of their own. */
export const FLAG = "--unstable-worker-options";
const FEATURE = "worker-options";
const CONFIG_NAMES = ["deno.json", "deno.jsonc"];

/** What the command line says: the flag, and which config file it selects. */
export interface CommandLine {
  /** `--unstable-worker-options` is present. */
  flag: boolean;
  /** `--config <path>`; `null` for `--no-config`; `undefined` when config discovery applies. */
  config: string | null | undefined;
}

/**
 * Reads Deno's own flags from a process's argument vector (`deno run [flags] script [args]`): flags
 * after the script belong to the script and are ignored.
 *
 * @param argv The NUL-separated `/proc/self/cmdline`, split.
 * @returns The flag and the config selection.
 */
export function readCommandLine(argv: readonly string[]): CommandLine {
  const result: CommandLine = { flag: false, config: undefined };
  // argv[0] is deno, argv[1] the subcommand (run, test, serve, ...); a script path ends the flags.
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") break;
    if (!arg.startsWith("-")) {
      if (argv[1] === "test" || argv[1] === "bench") continue; // every path is an input file
      break;
    }
    if (arg === FLAG) result.flag = true;
    else if (arg === "--no-config") result.config = null;
    else if (arg === "--config" || arg === "-c") result.config = argv[++i] ?? undefined;
    else if (arg.startsWith("--config=")) result.config = arg.slice("--config=".length);
    else if (arg.startsWith("-c=")) result.config = arg.slice(3);
  }
  return result;
}

/**
 * Removes `//` and `/* *\/` comments and trailing commas from JSONC, leaving strings alone, so that
 * `JSON.parse` reads a `deno.jsonc`.
 *
 * @param text JSONC text.
 * @returns JSON text.
 */
export function stripJsonc(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      out += text.slice(start, i + 1);
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
      out += " ";
    } else out += c;
  }
  return out.replace(/,(\s*[}\]])/g, "$1");
}

/**
 * Reads a config file's `unstable` list and `workspace` field.
 *
 * @param text The file's content.
 * @returns Whether it enables `worker-options`, and whether it is a workspace root; `undefined`
 * when the text is not a JSON object.
 */
export function readConfig(text: string): { enables: boolean; workspace: boolean } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripJsonc(text));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const config = parsed as { unstable?: unknown; workspace?: unknown };
  return {
    enables: Array.isArray(config.unstable) && config.unstable.includes(FEATURE),
    workspace: config.workspace !== undefined,
  };
}

function canRead(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

/** The text of a file, `undefined` when it does not exist, `null` when it cannot be read. */
function readIfPresent(path: string): string | undefined | null {
  if (!canRead(path)) return null;
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? undefined : null;
  }
}

function parentOf(dir: string): string | undefined {
  const trimmed = dir.replace(/\/+$/, "");
  const cut = trimmed.lastIndexOf("/");
  if (cut < 0 || trimmed === "") return undefined;
  return cut === 0 ? "/" : trimmed.slice(0, cut);
}

function currentDir(): string | undefined {
  try {
    return Deno.cwd();
  } catch {
    return undefined;
  }
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Whether the nearest config above `dir` (or its workspace root) enables `worker-options`:
 * `"unknown"` when a directory on the way cannot be read.
 */
function discoveredConfig(dir: string): WorkerOptionsFlag {
  let member: string | undefined;
  for (let at: string | undefined = dir; at !== undefined; at = parentOf(at)) {
    for (const name of CONFIG_NAMES) {
      const path = join(at, name);
      const text = readIfPresent(path);
      if (text === null) return { state: "unknown", evidence: `${path} cannot be read` };
      if (text === undefined) continue;
      const config = readConfig(text);
      if (!config) return { state: "unknown", evidence: `${path} is not JSON` };
      if (config.enables) return { state: "enabled", evidence: `"unstable" in ${path}` };
      // A member's settings may come from its workspace root further up.
      if (member === undefined && !config.workspace) {
        member = path;
        break;
      }
      return { state: "disabled", evidence: `no "${FEATURE}" in ${member ?? path}` };
    }
  }
  return member
    ? { state: "disabled", evidence: `no "${FEATURE}" in ${member}` }
    : { state: "disabled", evidence: "no deno.json" };
}

let detected: WorkerOptionsFlag | undefined;

/**
 * Tells whether Deno will let this process create workers with their own permissions. Read once
 * per process: the command line and the config Deno started with cannot change.
 *
 * @returns `"enabled"` only on positive evidence; `"disabled"` when both the command line and the
 * config file were read and neither turns the feature on; otherwise `"unknown"`.
 */
export function workerOptionsFlag(): WorkerOptionsFlag {
  return detected ??= detectWorkerOptionsFlag();
}

function detectWorkerOptionsFlag(): WorkerOptionsFlag {
  const cmdline = readIfPresent("/proc/self/cmdline");
  const line = typeof cmdline === "string" ? readCommandLine(cmdline.split("\0")) : undefined;
  if (line?.flag) return { state: "enabled", evidence: FLAG };
  let fromConfig: WorkerOptionsFlag;
  if (line?.config === null) fromConfig = { state: "disabled", evidence: "--no-config" };
  else if (typeof line?.config === "string") {
    const cwd = currentDir();
    const path = line.config.startsWith("/") || cwd === undefined
      ? line.config
      : join(cwd, line.config);
    const text = readIfPresent(path);
    const config = typeof text === "string" ? readConfig(text) : undefined;
    fromConfig = config === undefined
      ? { state: "unknown", evidence: `${path} cannot be read` }
      : config.enables
      ? { state: "enabled", evidence: `"unstable" in ${path}` }
      : { state: "disabled", evidence: `no "${FEATURE}" in ${path}` };
  } else {
    const main = Deno.mainModule.startsWith("file:")
      ? parentOf(decodeURIComponent(new URL(Deno.mainModule).pathname))
      : currentDir();
    fromConfig = main === undefined
      ? { state: "unknown", evidence: "the working directory cannot be read" }
      : discoveredConfig(main);
  }
  if (fromConfig.state === "enabled") return fromConfig;
  // Without the command line, the flag may still be there.
  if (!line) return { state: "unknown", evidence: "the command line cannot be read" };
  return fromConfig;
}
