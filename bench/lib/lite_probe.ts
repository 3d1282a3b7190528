/**
 * Runs the read-path and event scenarios and prints their figures as one JSON line: the bench starts
 * it with `--v8-flags=--lite-mode` to measure what V8's lite mode costs in speed.
 *
 * Usage: lite_probe.ts [--quick]
 */
import { events } from "../scenarios/events.ts";
import { readPath } from "../scenarios/read_path.ts";

const quick = Deno.args.includes("--quick");
// Only our side of the event figures: the naive informer could not keep up in lite mode (it had not
// received 100,000 events after 120 s), and its numbers are not what this probe is for.
const figures = [...await readPath(quick), ...await events(quick, false)];
console.log(JSON.stringify(figures));
