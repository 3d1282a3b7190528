/**
 * Main thread (tests): builds the `realfleet` Go program (etcd and kube-apiserver from Go modules)
 * when its cached binary is missing or stale. The binary is cached per machine under
 * `$XDG_CACHE_HOME/clustercache` (or `~/.cache/clustercache`), keyed by the program's sources and the
 * Go version, so only the first run pays for the build.
 *
 * @module
 */

const SOURCES = new URL("./", import.meta.url);

async function goVersion(): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("go", { args: ["version"], stdout: "piped", stderr: "piped" })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("the Go toolchain is not on PATH: the real API server cannot be built");
    }
    throw error;
  }
  if (!output.success) throw new Error("`go version` failed");
  return new TextDecoder().decode(output.stdout).trim();
}

/** Whether `go` is on PATH. */
export async function hasGo(): Promise<boolean> {
  try {
    await goVersion();
    return true;
  } catch {
    return false;
  }
}

async function sourceDigest(go: string): Promise<string> {
  const names = [...Deno.readDirSync(SOURCES)]
    .filter((e) =>
      e.isFile && (e.name.endsWith(".go") || e.name === "go.mod" || e.name === "go.sum")
    )
    .map((e) => e.name)
    .sort();
  const parts = [go];
  for (const name of names) {
    parts.push(name, await Deno.readTextFile(new URL(name, SOURCES)));
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/clustercache`;
}

/**
 * The path of an up-to-date `realfleet` binary, building it first when needed.
 *
 * @param progress Receives progress lines (the first build takes minutes).
 * @throws {Error} When Go is missing or the build fails (with the command and its output).
 */
export async function realfleetBinary(
  progress: (line: string) => void = () => {},
): Promise<string> {
  const go = await goVersion();
  const dir = cacheDir();
  const binary = `${dir}/realfleet-${await sourceDigest(go)}`;
  try {
    await Deno.stat(binary);
    return binary;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const started = performance.now();
  progress(`building the real API server (${go}); the first build takes several minutes...`);
  const partial = `${binary}.partial-${Deno.pid}`;
  const child = new Deno.Command("go", {
    args: ["build", "-o", partial, "."],
    cwd: SOURCES.pathname,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ticker = setInterval(
    () => progress(`  still building (${Math.round((performance.now() - started) / 1000)} s)`),
    30_000,
  );
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]).finally(() => clearInterval(ticker));
  if (!status.success) {
    await Deno.remove(partial).catch(() => {});
    throw new Error(
      `go build -o ${partial} . (in ${SOURCES.pathname}) failed with exit code ${status.code}:\n${stdout}${stderr}`,
    );
  }
  await Deno.rename(partial, binary);
  progress(`built in ${Math.round((performance.now() - started) / 1000)} s: ${binary}`);
  return binary;
}
