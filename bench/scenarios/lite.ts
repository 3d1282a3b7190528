/**
 * The speed side of V8's lite mode (the memory side is in `memory.ts`): the read-path and event
 * figures measured again in a process started with `--v8-flags=--lite-mode`, each against the same
 * figure of this run without it.
 */
import { type Figure, figure } from "../lib/report.ts";

const COMPARED = [
  "read_get_ops_per_s",
  "read_get_ops_ratio",
  "events_per_s",
  "event_latency_p99_ms",
];

export async function lite(quick: boolean, measured: readonly Figure[]): Promise<Figure[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--max-old-space-size=16384,--lite-mode",
      new URL("../lib/lite_probe.ts", import.meta.url).pathname,
      ...(quick ? ["--quick"] : []),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (out.code !== 0 || !line.startsWith("[")) {
    throw new Error(`lite-mode probe failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  const liteFigures = JSON.parse(line) as Figure[];
  const figures: Figure[] = [];
  for (const name of COMPARED) {
    const inLite = liteFigures.find((f) => f.name === name);
    const normal = measured.find((f) => f.name === name);
    if (!inLite) continue;
    figures.push(figure(`${name}_lite`, inLite.value, inLite.unit, {
      ...(normal ? { baseline: normal.value } : {}),
      note: "process run with --v8-flags=--lite-mode; baseline: the same figure without it",
    }));
  }
  return figures;
}
