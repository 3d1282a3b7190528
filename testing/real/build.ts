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

/**
 * The Kubernetes releases the real fleet is tested against: the newest patch of every minor the
 * library supports (`deno task real --kubernetes 1.31`). The default is the one whose `go.mod` is
 * committed beside the program; the others get a module generated from their own `go.mod`.
 */
export const KUBERNETES_RELEASES: Readonly<Record<string, string>> = {
  "1.31": "1.31.14",
  "1.32": "1.32.13",
  "1.33": "1.33.13",
  "1.34": "1.34.4",
  "1.35": "1.35.4",
  "1.36": "1.36.3",
  "1.37": "1.37.2",
};

/** The release built when none is asked for (the committed `go.mod`). */
export const DEFAULT_KUBERNETES = "1.37.2";

/** The oldest and the newest supported release (what `deno task test:real` runs). */
export const OLDEST_KUBERNETES = "1.31.14";

/**
 * An exact release from `1.31` or `1.31.14` (a leading `v` is fine).
 *
 * @throws {RangeError} For a minor the fleet does not support, or a malformed version.
 */
export function kubernetesRelease(version: string = DEFAULT_KUBERNETES): string {
  const bare = version.replace(/^v/, "");
  if (/^\d+\.\d+\.\d+$/.test(bare)) {
    const minor = bare.split(".").slice(0, 2).join(".");
    if (!KUBERNETES_RELEASES[minor]) {
      throw new RangeError(
        `Kubernetes ${bare}: the real fleet supports ${
          Object.keys(KUBERNETES_RELEASES).join(", ")
        }`,
      );
    }
    return bare;
  }
  const release = KUBERNETES_RELEASES[bare];
  if (!release) {
    throw new RangeError(
      `--kubernetes ${version}: give a minor (${
        Object.keys(KUBERNETES_RELEASES).join(", ")
      }) or an exact release such as ${DEFAULT_KUBERNETES}`,
    );
  }
  return release;
}

async function goSources(): Promise<{ name: string; text: string }[]> {
  const names = [...Deno.readDirSync(SOURCES)]
    .filter((e) => e.isFile && e.name.endsWith(".go"))
    .map((e) => e.name)
    .sort();
  return await Promise.all(
    names.map(async (name) => ({ name, text: await Deno.readTextFile(new URL(name, SOURCES)) })),
  );
}

async function digestOf(parts: string[]): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

async function run(
  args: string[],
  cwd: string,
  what: string,
): Promise<string> {
  const out = await new Deno.Command("go", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `go ${args.join(" ")} (in ${cwd}, ${what}) failed with exit code ${out.code}:\n${text}`,
    );
  }
  return text;
}

/**
 * A module for `release` in `dir`: the program's sources and a `go.mod` made from Kubernetes' own:
 * its staging modules at the matching `v0.x.y`, the etcd server it was released with.
 */
async function generatedModule(release: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const info = JSON.parse(
    await run(
      ["mod", "download", "-json", `k8s.io/kubernetes@v${release}`],
      dir,
      "go.mod of Kubernetes",
    ),
  ) as { GoMod: string };
  const upstream = await Deno.readTextFile(info.GoMod);
  const staging = [...upstream.matchAll(/^\s*(k8s\.io\/[\w.-]+) => \.\/staging\/src\//gm)]
    .map((m) => m[1]!);
  const etcd = /go\.etcd\.io\/etcd\/server\/v3 (v[\w.-]+)/.exec(upstream)?.[1];
  if (staging.length === 0 || !etcd) {
    throw new Error(`the go.mod of k8s.io/kubernetes v${release} is not as expected`);
  }
  const staged = `v0.${release.split(".").slice(1).join(".")}`;
  const goMod = [
    "module github.com/fleetkit/clustercache/testing/real",
    "",
    "go 1.26.0",
    "",
    "require (",
    `\tgo.etcd.io/etcd/server/v3 ${etcd}`,
    `\tk8s.io/component-base ${staged}`,
    `\tk8s.io/kubernetes v${release}`,
    ")",
    "",
    "replace (",
    ...staging.map((module) => `\t${module} => ${module} ${staged}`),
    ")",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/go.mod`, goMod);
  for (const source of await goSources()) {
    await Deno.writeTextFile(`${dir}/${source.name}`, source.text);
  }
  await run(["mod", "tidy"], dir, `dependencies of Kubernetes ${release}`);
}

/**
 * `-ldflags` that stamp the version the binary was built from: without them kube-apiserver says
 * `v0.0.0-master+$Format:%H$` and `kubectl version` cannot parse it.
 */
function versionFlags(release: string): string {
  const [major, minor] = release.split(".");
  const stamp = {
    gitVersion: `v${release}`,
    gitMajor: major!,
    gitMinor: minor!,
    gitTreeState: "clean",
    gitCommit: `v${release}-from-go-modules`,
    buildDate: "1970-01-01T00:00:00Z",
  };
  return Object.entries(stamp).flatMap(([name, value]) =>
    ["component-base", "client-go/pkg"].map((pkg) => `-X 'k8s.io/${pkg}/version.${name}=${value}'`)
  ).join(" ");
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/clustercache`;
}

/**
 * The path of an up-to-date `realfleet` binary of a Kubernetes release, building it first when
 * needed (cached per machine, keyed by the program's sources, the release and the Go version).
 *
 * @param progress Receives progress lines (the first build takes minutes).
 * @param kubernetes A minor (`1.31`) or an exact release; default {@linkcode DEFAULT_KUBERNETES}.
 * @throws {Error} When Go is missing or the build fails (with the command and its output).
 */
export async function realfleetBinary(
  progress: (line: string) => void = () => {},
  kubernetes?: string,
): Promise<string> {
  const release = kubernetesRelease(kubernetes);
  const go = await goVersion();
  const committed = release === DEFAULT_KUBERNETES;
  const parts = [go, release, ...(await goSources()).flatMap((s) => [s.name, s.text])];
  if (committed) {
    for (const name of ["go.mod", "go.sum"]) {
      parts.push(name, await Deno.readTextFile(new URL(name, SOURCES)));
    }
  }
  const dir = cacheDir();
  const key = await digestOf(parts);
  const binary = `${dir}/realfleet-v${release}-${key}`;
  try {
    await Deno.stat(binary);
    return binary;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const started = performance.now();
  progress(`building kube-apiserver ${release} and etcd (${go}); the first build takes minutes...`);
  const ticker = setInterval(
    () => progress(`  still building (${Math.round((performance.now() - started) / 1000)} s)`),
    30_000,
  );
  const partial = `${binary}.partial-${Deno.pid}`;
  try {
    let cwd = SOURCES.pathname;
    if (!committed) {
      cwd = `${dir}/src-v${release}-${key}`;
      await generatedModule(release, cwd);
    }
    await run(["build", "-ldflags", versionFlags(release), "-o", partial, "."], cwd, "the build");
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    throw error;
  } finally {
    clearInterval(ticker);
  }
  await Deno.rename(partial, binary);
  progress(`built in ${Math.round((performance.now() - started) / 1000)} s: ${binary}`);
  return binary;
}
