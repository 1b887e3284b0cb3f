/**
 * Composition root and CLI of the rating ingestor:
 * `ratingingestor [--on-invalid skip|abort] [--batch-size N] [--rating-url URL] <file>`.
 * Picks the publisher adapter, runs the ingestion, prints a one-line summary on
 * stdout. Logs are JSON lines on stderr, so stdout carries only the result.
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Logging from "@movieapp/platform/Logging"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Cause, Config, ConfigProvider, Console, Effect, Layer, Logger, Option } from "effect"
import * as RatingEventPublisherRpc from "./adapters/RatingEventPublisherRpc.js"
import * as Ingest from "./Ingest.js"

const DEFAULT_RATING_URL = "http://127.0.0.1:8092"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

const onInvalid = Options.choice("on-invalid", ["abort", "skip"]).pipe(
  Options.withDefault("abort" as const),
  Options.withDescription("What to do with invalid records: abort (default) publishes nothing; skip logs them and publishes the rest.")
)

const batchSize = Options.integer("batch-size").pipe(
  Options.withDefault(Ingest.DEFAULT_BATCH_SIZE),
  Options.mapEffect((n) => n >= 1 ? Effect.succeed(n) : invalid(`--batch-size must be at least 1, got ${n}`)),
  Options.withDescription(`Events per request to the rating service (default ${Ingest.DEFAULT_BATCH_SIZE}).`)
)

const ratingUrl = Options.text("rating-url").pipe(
  Options.withFallbackConfig(Config.string("RATING_URL").pipe(Config.withDefault(DEFAULT_RATING_URL))),
  Options.mapEffect((url) =>
    URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)
      ? Effect.succeed(url.replace(/\/+$/, ""))
      : invalid(`--rating-url must be an http(s) URL, got "${url}"`)
  ),
  Options.withDescription(`Base URL of the rating service (env RATING_URL, default ${DEFAULT_RATING_URL}).`)
)

const file = Args.file({ name: "file" }).pipe(Args.withDescription("A JSON array of rating events."))

const ingest = Command.make("ratingingestor", { onInvalid, batchSize, ratingUrl, file }, (options) =>
  Ingest.run({ file: options.file, onInvalid: options.onInvalid, batchSize: options.batchSize, progress: process.stderr.isTTY === true }).pipe(
    Effect.flatMap((summary) => Console.log(Ingest.formatSummary(summary))),
    Effect.provide(RatingEventPublisherRpc.layer({ url: options.ratingUrl }))
  )).pipe(Command.withDescription("Publishes a file of rating events to the rating service."))

const cli = Command.run(ingest, { name: "ratingingestor", version: "0.1.0" })

/** Expected failures become one line on stderr; the CLI already printed its own validation errors; bugs keep their trace. */
const report = (cause: Cause.Cause<unknown>) =>
  Option.match(Cause.failureOption(cause), {
    onSome: (error) =>
      ValidationError.isValidationError(error)
        ? Effect.void
        : Console.error(`ratingingestor: ${error instanceof Error ? error.message : String(error)}`),
    onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Console.error(Cause.pretty(cause))
  })

// The level comes from the CLI's built-in `--log-level`.
const logging = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logging.jsonLogger))

/** `TRACING_ENDPOINT`, `TRACING_SAMPLE_RATIO`, as for the services; spans are flushed before exit. */
const tracing = Layer.unwrapEffect(
  Effect.map(Telemetry.config, (config) => Telemetry.layer("ratingingestor", config)).pipe(
    Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase))
  )
)

cli(process.argv).pipe(
  Effect.tapErrorCause(report),
  Effect.provide(Layer.mergeAll(NodeContext.layer, logging, tracing)),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
