/**
 * The example operator (examples/configmap_sync) in its own process, as it is deployed: the e2e
 * tests against the simulator and against real API servers both drive it from outside.
 */
import assert from "node:assert/strict";
import { eventually } from "./fixture.ts";

/** A running operator. */
export interface OperatorProcess extends AsyncDisposable {
  /** Resolves once the operator printed `ready`. */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Stops it with SIGTERM, asserts a clean exit and returns its outcome counts. If never called,
   * disposal kills it and prints its output: the test failed, and the operator's log says why.
   */
  stop(): Promise<Record<string, number>>;
  /** What it wrote to stderr (its log), once it has exited. */
  log(): Promise<string>;
}

/** Starts the operator following `source` (`namespace/name`) in the management cluster. */
export async function startOperator(
  managementKubeconfig: string,
  source: string,
): Promise<OperatorProcess> {
  const dir = await Deno.makeTempDir({ prefix: "configmap-sync-" });
  const kubeconfig = `${dir}/management.kubeconfig`;
  await Deno.writeTextFile(kubeconfig, managementKubeconfig, { mode: 0o600 });
  const operator = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../fixtures/configmap_sync_runner.ts", import.meta.url).pathname,
      kubeconfig,
      source,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const reading = (async () => {
    for await (const chunk of operator.stdout.pipeThrough(new TextDecoderStream())) {
      output += chunk;
    }
  })();
  const stderr = new Response(operator.stderr).text();
  let stopped = false;
  return {
    ready: (timeoutMs = 20_000) =>
      eventually(() => output.includes("ready"), "the operator to start", timeoutMs),
    async stop() {
      operator.kill("SIGTERM");
      stopped = true;
      const status = await operator.status;
      await reading;
      assert.equal(status.code, 0, await stderr);
      return JSON.parse(output.trim().split("\n").at(-1)!);
    },
    log: () => stderr,
    async [Symbol.asyncDispose]() {
      if (!stopped) {
        operator.kill("SIGKILL");
        await operator.status;
        await reading.catch(() => {});
        console.error(`operator stdout:\n${output}\noperator stderr:\n${await stderr}`);
      }
      await reading.catch(() => {});
      await stderr;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
