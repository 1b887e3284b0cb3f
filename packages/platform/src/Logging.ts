/**
 * Structured JSON logs, one object per line, filtered by level. A line written
 * inside a span carries `traceId` and `spanId`, so logs and traces of one call can
 * be joined.
 */
import { Context, Effect, FiberRef, FiberRefs, HashSet, Layer, Logger, Option, Tracer } from "effect"
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

/** {@link jsonLogger} writing to the console: the one logger of a service process. */
export const consoleLogger = Logger.withConsoleLog(jsonLogger)

export const layer = (config: LogConfig): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, consoleLogger), Logger.minimumLogLevel(config.level))

/**
 * Logs `effect` with {@link consoleLogger} alone, whatever loggers are installed:
 * for what happens before the configured logging exists (or after it is gone),
 * such as a failure to start.
 */
export const withConsoleLoggerOnly = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, FiberRef.currentLoggers, HashSet.make(consoleLogger))
