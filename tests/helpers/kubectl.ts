/**
 * Runs the real kubectl against simulated clusters. Tests that need it are ignored (and say so
 * loudly) where kubectl is not installed.
 */

function findKubectl(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const path = `${dir}/kubectl`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const kubectlPath: string | undefined = findKubectl();

if (!kubectlPath) {
  console.warn(
    "\n!!! kubectl is not installed: the kubectl end-to-end tests are SKIPPED (reported as ignored).\n",
  );
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Kubectl implements AsyncDisposable {
  readonly dir: string;
  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<Kubectl> {
    return new Kubectl(await Deno.makeTempDir({ prefix: "kubectl-e2e-" }));
  }

  async writeKubeconfig(name: string, text: string): Promise<string> {
    const path = `${this.dir}/${name}.kubeconfig`;
    await Deno.writeTextFile(path, text, { mode: 0o600 });
    return path;
  }

  #args(kubeconfig: string, args: string[]): string[] {
    return [
      "--kubeconfig",
      kubeconfig,
      "--cache-dir",
      `${this.dir}/cache`,
      "--request-timeout=15s",
      ...args,
    ];
  }

  async run(kubeconfig: string, args: string[], stdin?: string): Promise<KubectlResult> {
    const child = new Deno.Command(kubectlPath!, {
      args: this.#args(kubeconfig, args),
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: { HOME: this.dir },
    }).spawn();
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(stdin));
      await writer.close();
    }
    const out = await child.output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  }

  /** Starts a long-running kubectl (e.g. `get -w`) whose stdout is read line by line. */
  spawn(
    kubeconfig: string,
    args: string[],
  ): { lines: AsyncIterator<string>; kill: () => Promise<void> } {
    const child = new Deno.Command(kubectlPath!, {
      args: this.#args(kubeconfig, args),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { HOME: this.dir },
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    const lines: AsyncIterator<string> = {
      async next() {
        for (;;) {
          const newline = buffer.indexOf("\n");
          if (newline >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            return { value: line, done: false };
          }
          const { value, done } = await reader.read();
          if (done) return { value: undefined, done: true };
          buffer += value;
        }
      },
    };
    return {
      lines,
      kill: async () => {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        await reader.cancel().catch(() => {});
        await child.status;
      },
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
