/**
 * Spans as a test sees them: every service's tracer writes to one in-memory
 * exporter, so a test can follow a trace across services in one process.
 */
import * as Telemetry from "@movieapp/platform/Telemetry"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Duration, Effect, type Layer, Schedule } from "effect"

export interface SpanRecorder {
  /** Tracing for one service, named after it, recording every span it ends. */
  readonly tracing: (serviceName: string, options?: { readonly sampleRatio?: number }) => Layer.Layer<never>
  /** Every span recorded so far. */
  readonly spans: () => ReadonlyArray<ReadableSpan>
  /** Spans of one trace, once `until` holds for them (polled; fails after `timeout`). */
  readonly trace: (
    traceId: string,
    until: (spans: ReadonlyArray<ReadableSpan>) => boolean,
    timeout?: Duration.DurationInput
  ) => Effect.Effect<ReadonlyArray<ReadableSpan>, Error>
}

/**
 * A recorder whose exporter outlives the services using it: a tracer provider
 * shuts its exporter down when its layer closes, and an InMemorySpanExporter
 * would then drop everything it held.
 */
export const make = (): SpanRecorder => {
  const exporter = new InMemorySpanExporter()
  exporter.shutdown = () => Promise.resolve()
  const spans = () => exporter.getFinishedSpans()
  return {
    tracing: (serviceName, options) =>
      Telemetry.layerSdk({
        serviceName,
        sampleRatio: options?.sampleRatio ?? 1,
        spanProcessor: new SimpleSpanProcessor(exporter)
      }),
    spans,
    trace: (traceId, until, timeout: Duration.DurationInput = "5 seconds") => {
      const current = Effect.sync(() => spans().filter((span) => span.spanContext().traceId === traceId))
      return current.pipe(
        // Servers answer before their own span has ended: wait for the trace to be complete.
        Effect.filterOrFail(until, () => new Error("incomplete")),
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new Error(
              `trace ${traceId} incomplete after ${Duration.format(Duration.decode(timeout))}:\n${
                render(spans().filter((s) => s.spanContext().traceId === traceId))
              }`
            )
        })
      )
    }
  }
}

/** A random W3C `traceparent` of a caller outside the system, and its ids. */
export const callerContext = (sampled = true) => {
  const hex = (bytes: number) =>
    Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, "0")).join("")
  const traceId = hex(16)
  const spanId = hex(8)
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? "01" : "00"}` }
}

/** The service that recorded a span. */
export const serviceOf = (span: ReadableSpan): unknown => span.resource.attributes["service.name"]

/** The span whose parent is `parent`, named `name`; fails with the whole trace drawn when there is none. */
export const childOf = (
  spans: ReadonlyArray<ReadableSpan>,
  parent: { readonly spanId: string },
  name: string
): ReadableSpan => {
  const found = spans.find((span) => span.name === name && span.parentSpanContext?.spanId === parent.spanId)
  if (found === undefined) throw new Error(`no span "${name}" under ${parent.spanId} in:\n${render(spans)}`)
  return found
}

/** A trace as an indented tree (`name [service]`), for failure messages. */
export const render = (spans: ReadonlyArray<ReadableSpan>): string => {
  const ids = new Set(spans.map((span) => span.spanContext().spanId))
  const lines: Array<string> = []
  const walk = (parent: string | undefined, depth: number) => {
    for (const span of spans) {
      const parentId = span.parentSpanContext?.spanId
      const isRoot = parent === undefined && (parentId === undefined || !ids.has(parentId))
      if (isRoot || (parent !== undefined && parentId === parent)) {
        lines.push(
          `${"  ".repeat(depth)}${span.name} [${String(serviceOf(span))}] ${span.spanContext().spanId}${
            isRoot && parentId ? ` (parent ${parentId})` : ""
          }`
        )
        walk(span.spanContext().spanId, depth + 1)
      }
    }
  }
  walk(undefined, 0)
  return lines.join("\n")
}
