/**
 * How the project's command-line programs (ratingingestor, sizecompare) talk to
 * people, piped or not: colours only on a terminal and without `NO_COLOR`; every
 * line they write as an error starts with the program's name; and logs fit
 * where they go: on a terminal, only warnings and errors, as
 * `<name>: warning: ...` lines beside the program's own output (a progress bar,
 * a summary); elsewhere (a pipe, a file, a Kubernetes Job), JSON lines from Info
 * up, as the services write them. `--log-level` changes the level either way.
 */
import { Cause, Console, Effect, HashMap, Layer, Logger, LogLevel, Option } from "effect"
import { format } from "node:util"
import * as Logging from "./Logging.js"

/** CSI sequences: colours and styles (and cursor moves) a terminal reads, and a file or pipe gets as noise. */
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]/g

/** Colours for a stream: on a terminal, unless `NO_COLOR` is set (https://no-color.org). */
export const colours = (stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "")

/** `args` as one text, without colours unless `coloured`. */
const text = (args: ReadonlyArray<unknown>, coloured: boolean) => {
  const joined = format(...args)
  return coloured ? joined : joined.replace(ANSI, "")
}

/** Every line of `text` led by `name: ` (once: a line that has it keeps it). */
export const prefixLines = (name: string, text: string): string =>
  text.split("\n").map((line) => line === "" || line.startsWith(`${name}: `) ? line : `${name}: ${line}`).join("\n")

/**
 * What the program says to people (`Console.log`, `Console.error`: results,
 * help, usage errors) as the module describes. Log lines go through the logger
 * instead, which writes with the console's unsafe methods, left as they are.
 */
const consoleFor = (name: string, base: Console.Console): Console.Console => ({
  ...base,
  log: (...args) => base.log(text(args, colours(process.stdout))),
  error: (...args) => base.error(prefixLines(name, text(args, colours(process.stderr))))
})

/** A log line for a person: `name: warning: message (key=value, ...)`, then its cause. */
const terminalLogger = (name: string) =>
  Logger.make(({ annotations, cause, logLevel, message }) => {
    const parts = (Array.isArray(message) ? message : [message]).map((part) =>
      typeof part === "string" ? part : format(part)
    )
    const context = HashMap.toEntries(annotations).map(([key, value]) =>
      `${key}=${typeof value === "string" ? value : format(value)}`
    )
    const level = logLevel === LogLevel.Warning ? "warning" : logLevel.label.toLowerCase()
    const line = `${name}: ${level}: ${parts.join(" ")}${context.length === 0 ? "" : ` (${context.join(", ")})`}`
    return Cause.isEmpty(cause) ? line : `${line}\n${prefixLines(name, Cause.pretty(cause))}`
  })

/** The console and logging of the program `name`, for its whole run. */
export const layer = (name: string): Layer.Layer<never> => {
  const onTerminal = process.stderr.isTTY === true
  return Layer.mergeAll(
    Layer.unwrapEffect(Console.consoleWith((base) => Effect.succeed(Console.setConsole(consoleFor(name, base))))),
    Logger.replace(
      Logger.defaultLogger,
      Logger.withConsoleError(onTerminal ? terminalLogger(name) : Logging.jsonLogger)
    ),
    Logger.minimumLogLevel(onTerminal ? LogLevel.Warning : LogLevel.Info)
  )
}

/**
 * The one line a failed run ends with (through the console: led by the
 * program's name): an expected failure's message; nothing for @effect/cli's
 * own usage errors, which it has printed; a bug in full.
 */
export const report = (cause: Cause.Cause<unknown>, isReported: (error: unknown) => boolean = () => false) =>
  Option.match(Cause.failureOption(cause), {
    onSome: (error) =>
      isReported(error) ? Effect.void : Console.error(error instanceof Error ? error.message : String(error)),
    onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Console.error(Cause.pretty(cause))
  })
