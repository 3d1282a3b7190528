/**
 * Logging from inside a worker: records travel to the main thread, which hands them to LogTape under
 * the `["clustercache", "worker"]` category with the cluster as a property. The worker imports no
 * logging library and configures nothing.
 *
 * @module
 */

import type { SessionMessage, WorkerLogLevel } from "../src/shared/protocol.ts";

/** A logger that forwards to the main thread. */
export interface WorkerLog {
  debug(message: string, properties?: Record<string, unknown>): void;
  info(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
  error(message: string, properties?: Record<string, unknown>): void;
}

/** Creates a logger of one session, posting through `post`. */
export function workerLog(post: (message: SessionMessage) => void, session: number): WorkerLog {
  const emit =
    (level: WorkerLogLevel) => (message: string, properties: Record<string, unknown> = {}) =>
      post({ type: "log", session, level, message, properties });
  return { debug: emit("debug"), info: emit("info"), warn: emit("warning"), error: emit("error") };
}
