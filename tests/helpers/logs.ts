/**
 * The library's log records, captured for a test to look at.
 */
import { configure, type LogRecord } from "@logtape/logtape";

/** Captures every log record of the library (undo with logtape's `reset()`). */
export async function captureLogs(): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (record) => records.push(record) },
    loggers: [
      { category: ["clustercache"], lowestLevel: "debug", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  return records;
}
