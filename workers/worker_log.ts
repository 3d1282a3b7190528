/**
 * Logging from inside a worker: records travel to the main thread, which hands them to LogTape under
 * the `["clustercache", "worker"]` category with the cluster as a property. The worker imports no
 * logging library and configures nothing.
 *
 * @module
 */

import type { Outbox } from "../src/outbox.ts";
import type { WorkerLogLevel, WorkerMessage } from "../src/protocol.ts";

/** A logger that forwards to the main thread. */
export interface WorkerLog {
  debug(message: string, properties?: Record<string, unknown>): void;
  info(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
  error(message: string, properties?: Record<string, unknown>): void;
}

/** Creates a logger posting through `outbox`. */
export function workerLog(outbox: Outbox<WorkerMessage>): WorkerLog {
  const emit =
    (level: WorkerLogLevel) => (message: string, properties: Record<string, unknown> = {}) =>
      outbox.post({ type: "log", level, message, properties });
  return { debug: emit("debug"), info: emit("info"), warn: emit("warning"), error: emit("error") };
}
