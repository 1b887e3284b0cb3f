/**
 * Composition root and CLI of the rating ingestor:
 * `ratingingestor [--kafka-brokers H:P,... [--topic T] | --rating-address HOST:PORT [--token T]] [--on-invalid skip|abort] [--batch-size N] (<file> | --generate N [--seed S])`.
 * Picks the publisher adapter (Kafka when brokers are given, else the rating
 * service's RPC endpoint), runs the ingestion, prints a one-line summary on
 * stdout. Logs go to stderr (see platform's Cli: warnings and errors on a
 * terminal, beside the progress bar; JSON lines otherwise), so stdout carries
 * only the result.
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Cli from "@movieapp/platform/Cli"
import { DEFAULT_TLS_RELOAD_INTERVAL } from "@movieapp/platform/Config"
import * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as Telemetry from "@movieapp/platform/Telemetry"
import * as Tls from "@movieapp/platform/Tls"
import {
  Config,
  type ConfigError,
  ConfigProvider,
  Console,
  Data,
  Effect,
  Either,
  Layer,
  Option,
  type Redacted
} from "effect"
import * as RatingEventPublisherRpc from "./adapters/RatingEventPublisherRpc.js"
import * as Ingest from "./Ingest.js"
import type { PublishError, RatingEventPublisher } from "./ports/RatingEventPublisher.js"

const DEFAULT_RATING_ADDRESS = "127.0.0.1:8072"

/** A usage mistake found after parsing (the CLI prints its own parse errors). */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}
const usage = (message: string) => Effect.fail(new UsageError({ message: `${message} (see --help)` }))

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

const onInvalid = Options.choice("on-invalid", ["abort", "skip"]).pipe(
  Options.withDefault("abort" as const),
  Options.withDescription(
    "What to do with invalid records: abort (default) publishes nothing; skip logs them and publishes the rest."
  )
)

const batchSize = Options.integer("batch-size").pipe(
  Options.withDefault(Ingest.DEFAULT_BATCH_SIZE),
  Options.mapEffect((n) => n >= 1 ? Effect.succeed(n) : invalid(`--batch-size must be at least 1, got ${n}`)),
  Options.withDescription(`Events per request to the rating service (default ${Ingest.DEFAULT_BATCH_SIZE}).`)
)

const ratingAddress = Options.text("rating-address").pipe(
  Options.withFallbackConfig(Config.string("RATING_ADDRESS").pipe(Config.withDefault(DEFAULT_RATING_ADDRESS))),
  Options.mapEffect((text) => {
    const address = RpcTransport.parseAddress(text)
    return address === undefined
      ? invalid(`--rating-address must be host:port, got "${text}"`)
      : Effect.succeed(address)
  }),
  Options.withDescription(
    `Effect RPC address of the rating service, host:port (env RATING_ADDRESS, default ${DEFAULT_RATING_ADDRESS}).`
  )
)

/** A PEM file for the TLS connection to the rating service, as an option or from `env`. */
const tlsFile = (name: string, env: string, what: string) =>
  Options.file(name, { exists: "yes" }).pipe(
    Options.withFallbackConfig(Config.string(env)),
    Options.optional,
    Options.withDescription(`${what} (env ${env}), for a rating service that demands mutual TLS.`)
  )

const ratingTls = Options.all({
  caFile: tlsFile("rating-tls-ca-file", "RATING_TLS_CA_FILE", "The CA that signed the rating service's certificate"),
  certFile: tlsFile("rating-tls-cert-file", "RATING_TLS_CERT_FILE", "This client's certificate, signed by that CA"),
  keyFile: tlsFile("rating-tls-key-file", "RATING_TLS_KEY_FILE", "This client's private key")
})

const token = Options.redacted("token").pipe(
  Options.withFallbackConfig(Config.redacted("RATING_TOKEN")),
  Options.optional,
  Options.withDescription(
    "A bearer token with the scope ratings:ingest, for the rating service (env RATING_TOKEN, preferred: a command line is visible to others)."
  )
)

const kafkaBrokers = Options.text("kafka-brokers").pipe(
  Options.withFallbackConfig(Config.string("KAFKA_BROKERS")),
  Options.mapEffect((text) =>
    Either.match(KafkaSettings.parseBrokers(text), {
      onLeft: (reason) => invalid(`--kafka-brokers: ${reason}`),
      onRight: Effect.succeed
    })
  ),
  Options.optional,
  Options.withDescription(
    "Publish to Kafka through these brokers, host:port,... (env KAFKA_BROKERS); without them, events go to the rating service."
  )
)

const topic = Options.text("topic").pipe(
  Options.withFallbackConfig(Config.string("KAFKA_TOPIC").pipe(Config.withDefault(KafkaSettings.DEFAULT_TOPIC))),
  Options.mapEffect((topic) => topic.trim() === "" ? invalid("--topic must not be empty") : Effect.succeed(topic)),
  Options.withDescription(`The Kafka topic (env KAFKA_TOPIC, default ${KafkaSettings.DEFAULT_TOPIC}).`)
)

const generate = Options.integer("generate").pipe(
  Options.mapEffect((n) => n >= 1 ? Effect.succeed(n) : invalid(`--generate must be at least 1, got ${n}`)),
  Options.optional,
  Options.withDescription("Publish this many synthetic events instead of a file (for load tests).")
)

const seed = Options.integer("seed").pipe(
  Options.withDefault(1),
  Options.withDescription("Seed of the synthetic events; the same seed gives the same events (default 1).")
)

/**
 * `KAFKA_SASL_*` and `KAFKA_TLS_*`, as for the rating service: from the environment
 * only, never flags, so that a password does not show in the process list.
 */
const kafkaSecurity = KafkaSettings.security.pipe(
  Config.nested("kafka"),
  Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase))
)

const file = Args.file({ name: "file" }).pipe(Args.withDescription("A JSON array of rating events."), Args.optional)

const ingest = Command.make(
  "ratingingestor",
  { onInvalid, batchSize, ratingAddress, ratingTls, token, kafkaBrokers, topic, generate, seed, file },
  (options) => {
    const progress = process.stderr.isTTY === true
    const run: Effect.Effect<
      Ingest.Summary,
      Effect.Effect.Error<ReturnType<typeof Ingest.run>> | UsageError,
      Effect.Effect.Context<ReturnType<typeof Ingest.run>>
    > = Option.match(options.generate, {
      onSome: (count) =>
        Option.isSome(options.file)
          ? usage("give either a file or --generate, not both")
          : Ingest.runGenerated({ count, seed: options.seed, batchSize: options.batchSize, progress }),
      onNone: () =>
        Option.match(options.file, {
          onNone: () => usage("give a file of rating events, or --generate N"),
          onSome: (file) => Ingest.run({ file, onInvalid: options.onInvalid, batchSize: options.batchSize, progress })
        })
    })
    const publisher: Layer.Layer<
      RatingEventPublisher,
      ConfigError.ConfigError | PublishError | UsageError | Tls.TlsError
    > = Option.match(options.kafkaBrokers, {
      onSome: (brokers) =>
        Layer.unwrapEffect(Effect.gen(function*() {
          const security = yield* kafkaSecurity
          // kafkajs is loaded only when Kafka is chosen.
          const RatingEventPublisherKafka = yield* Effect.promise(() =>
            import("./adapters/RatingEventPublisherKafka.js")
          )
          return RatingEventPublisherKafka.layer({
            kafka: { ...KafkaSettings.defaults(brokers, "ratingingestor", security), topic: options.topic }
          })
        })),
      onNone: () => rpcPublisher(options.ratingAddress, options.ratingTls, Option.getOrUndefined(options.token))
    })
    return run.pipe(
      Effect.flatMap((summary) => Console.log(Ingest.formatSummary(summary))),
      Effect.provide(publisher)
    )
  }
).pipe(
  Command.withDescription("Publishes rating events (a file, or synthetic ones) to Kafka or to the rating service.")
)

/** The rating service's Effect RPC endpoint, over mutual TLS when the three files are given. */
const rpcPublisher = (
  address: RpcTransport.Address,
  tls: {
    readonly caFile: Option.Option<string>
    readonly certFile: Option.Option<string>
    readonly keyFile: Option.Option<string>
  },
  token: Redacted.Redacted<string> | undefined
): Layer.Layer<RatingEventPublisher, UsageError | Tls.TlsError> => {
  const { caFile, certFile, keyFile } = tls
  if (Option.isNone(caFile) && Option.isNone(certFile) && Option.isNone(keyFile)) {
    return RatingEventPublisherRpc.layer({ address, token })
  }
  if (Option.isNone(caFile) || Option.isNone(certFile) || Option.isNone(keyFile)) {
    return Layer.fail<UsageError>(
      new UsageError({
        message:
          "mutual TLS to the rating service takes all three of --rating-tls-ca-file, --rating-tls-cert-file and --rating-tls-key-file (see --help)"
      })
    )
  }
  return Layer.unwrapScoped(
    Effect.map(
      Tls.make({
        caFile: caFile.value,
        certFile: certFile.value,
        keyFile: keyFile.value,
        clientAuth: "rpc",
        reloadInterval: DEFAULT_TLS_RELOAD_INTERVAL
      }),
      (certificates) => RatingEventPublisherRpc.layer({ address, token, tls: { certificates, service: "rating" } })
    )
  )
}

const cli = Command.run(ingest, { name: "ratingingestor", version: "0.1.0" })

/** `TRACING_ENDPOINT`, `TRACING_SAMPLE_RATIO`, as for the services; spans are flushed before exit. */
const tracing = Layer.unwrapEffect(
  Effect.map(Telemetry.config, (config) => Telemetry.layer("ratingingestor", config)).pipe(
    Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase))
  )
)

cli(process.argv).pipe(
  Effect.provide(Layer.mergeAll(NodeContext.layer, tracing)),
  // After the layers, so that an invalid TRACING_* is reported too; @effect/cli printed its own usage errors.
  Effect.tapErrorCause((cause) => Cli.report(cause, ValidationError.isValidationError)),
  Effect.provide(Cli.layer("ratingingestor")),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
