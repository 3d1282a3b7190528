/**
 * Loggers of this library, by LogTape category under `["clustercache"]`. The library never
 * configures sinks: the application does (`configure()` from `@logtape/logtape`).
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import type { WorkerLogLevel } from "../shared/protocol.ts";

/** The root category. */
export const LOG_CATEGORY = "clustercache";

/** A logger for a part of the library, e.g. `logger("reconciler")`. */
export function logger(...category: string[]): Logger {
  return getLogger([LOG_CATEGORY, ...category]);
}

/** Hands a record forwarded from a worker to LogTape, with the cluster as a property. */
export function forwardWorkerLog(
  target: Logger,
  level: WorkerLogLevel,
  message: string,
  properties: Record<string, unknown>,
): void {
  switch (level) {
    case "debug":
      target.debug(message, properties);
      break;
    case "info":
      target.info(message, properties);
      break;
    case "warning":
      target.warn(message, properties);
      break;
    case "error":
      target.error(message, properties);
      break;
  }
}
