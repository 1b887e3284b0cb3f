/**
 * Structured JSON logs, one object per line, filtered by level. A line written
 * inside a span carries `traceId` and `spanId`, so logs and traces of one call can
 * be joined.
 */
import { Context, FiberRef, FiberRefs, Layer, Logger, Option, Tracer } from "effect"
import type { LogConfig } from "./Config.js"

/** Effect's JSON log line, plus the ids of the span it was written in. */
export const jsonLogger: Logger.Logger<unknown, string> = Logger.make((options) => {
  const line = Logger.jsonLogger.log(options)
  const span = Context.getOption(FiberRefs.getOrDefault(options.context, FiberRef.currentContext), Tracer.ParentSpan)
  // Ids are hex: appended to Effect's own object rather than re-serializing it.
  return Option.isSome(span)
    ? `${line.slice(0, -1)},"traceId":"${span.value.traceId}","spanId":"${span.value.spanId}"}`
    : line
})

export const layer = (config: LogConfig): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, Logger.withConsoleLog(jsonLogger)), Logger.minimumLogLevel(config.level))
