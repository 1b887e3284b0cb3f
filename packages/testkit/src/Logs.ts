/**
 * A test's log lines, captured instead of printed: a green run shows nothing a
 * scenario logs on purpose (a broker refusing, a bug injected, a row refused),
 * and the test asserts on what it expects to be logged.
 */
import { Cause, HashMap, type Layer, Logger } from "effect"

export interface Line {
  /** `INFO`, `WARN`, `ERROR`... */
  readonly level: string
  /** The first part of the message, as text. */
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  /** The cause logged with the line, rendered; empty when none. */
  readonly cause: string
}

export interface Capture {
  /** Every line logged so far, oldest first. */
  readonly lines: () => ReadonlyArray<Line>
  /** The lines at `level` (`WARN`, `ERROR`...) so far. */
  readonly at: (level: string) => ReadonlyArray<Line>
  /** Replaces the default logger (which prints) with this capture, for what it is provided to. */
  readonly layer: Layer.Layer<never>
}

/** A new capture; provide its `layer` to the effects (or layers) whose logs it takes. */
export const make = (): Capture => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    const first = Array.isArray(message) ? message[0] : message
    lines.push({
      level: logLevel.label,
      message: typeof first === "string" ? first : String(first),
      annotations: Object.fromEntries(HashMap.toEntries(annotations)),
      cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause)
    })
  })
  return {
    lines: () => lines,
    at: (level) => lines.filter((line) => line.level === level),
    layer: Logger.replace(Logger.defaultLogger, logger)
  }
}
