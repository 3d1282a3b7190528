/**
 * Traces (main thread only): a `Controller`'s reconciles and the calls clients make into a
 * cluster's session become OpenTelemetry spans with the cluster as an attribute, through
 * `@opentelemetry/api`, so Deno's built-in export (`OTEL_DENO=true`) carries them without setup,
 * and so does any tracer provider the application registers. Without one, the API's no-op tracer
 * answers: no span is recorded, no attribute is built.
 *
 * @module
 */

import { type Attributes, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

const tracer = trace.getTracer("@fleetkit/clustercache");

/**
 * Runs `fn` in a span named `name` (a child of the span active now), ending it when `fn` settles
 * and recording a failure. `attributes` is called only when the span records.
 */
export function traced<T>(
  name: string,
  attributes: () => Attributes,
  fn: () => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind }, async (span) => {
    if (!span.isRecording()) {
      span.end();
      return await fn();
    }
    span.setAttributes(attributes());
    try {
      return await fn();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      throw error;
    } finally {
      span.end();
    }
  });
}

export { SpanKind };
