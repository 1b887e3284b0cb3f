/**
 * Apache Kafka through kafkajs, for the programs that publish or consume rating
 * events: configuration, a client whose logs go through Effect's logger, scoped
 * producers, and the one rule for broker failures: they reach callers as
 * ServiceUnavailable with the root reason, never as a kafkajs stack.
 */
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Array, Config, ConfigError, Duration, Effect, Either, LogLevel, Runtime, type Scope } from "effect"
import { Kafka, logLevel, Partitioners, type Producer, type ProducerConfig } from "kafkajs"
import { rootReason } from "./ErrorChain.js"

export interface KafkaConfig {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: Array.NonEmptyReadonlyArray<string>
  readonly clientId: string
  /** The topic rating events travel on. */
  readonly topic: string
  /** How long connecting to a broker may take. */
  readonly connectionTimeout: Duration.Duration
  /** How long one broker request may take. */
  readonly requestTimeout: Duration.Duration
}

export const DEFAULT_TOPIC = "ratings"
const DEFAULT_CONNECTION_TIMEOUT = Duration.seconds(3)
const DEFAULT_REQUEST_TIMEOUT = Duration.seconds(30)

/**
 * `kafka.*`: `KAFKA_BROKERS` (comma-separated `host:port` list, required),
 * `KAFKA_CLIENT_ID`, `KAFKA_TOPIC` (default `ratings`), `KAFKA_CONNECTION_TIMEOUT`,
 * `KAFKA_REQUEST_TIMEOUT`.
 */
export const config = (defaults: { readonly clientId: string }): Config.Config<KafkaConfig> =>
  Config.all({
    brokers: Config.string("brokers").pipe(
      Config.mapOrFail((text) => Either.mapLeft(parseBrokers(text), (reason) => ConfigError.InvalidData([], reason)))
    ),
    clientId: Config.nonEmptyString("clientId").pipe(Config.withDefault(defaults.clientId)),
    topic: Config.nonEmptyString("topic").pipe(Config.withDefault(DEFAULT_TOPIC)),
    connectionTimeout: Config.duration("connectionTimeout").pipe(Config.withDefault(DEFAULT_CONNECTION_TIMEOUT)),
    requestTimeout: Config.duration("requestTimeout").pipe(Config.withDefault(DEFAULT_REQUEST_TIMEOUT))
  }).pipe(Config.nested("kafka"))

/** A comma-separated `host:port` list, as `KAFKA_BROKERS` and the ingestor's `--kafka-brokers` take it. */
export const parseBrokers = (text: string): Either.Either<Array.NonEmptyReadonlyArray<string>, string> => {
  const brokers = text.split(",").map((broker) => broker.trim()).filter((broker) => broker !== "")
  const bad = brokers.find((broker) => !/^[^\s:/]+:\d{1,5}$/.test(broker))
  if (bad !== undefined) return Either.left(`expected host:port, got "${bad}"`)
  return Array.isNonEmptyReadonlyArray(brokers) ? Either.right(brokers) : Either.left("expected at least one host:port")
}

/** Defaults for everything but the brokers. */
export const defaults = (brokers: Array.NonEmptyReadonlyArray<string>, clientId: string): KafkaConfig => ({
  brokers,
  clientId,
  topic: DEFAULT_TOPIC,
  connectionTimeout: DEFAULT_CONNECTION_TIMEOUT,
  requestTimeout: DEFAULT_REQUEST_TIMEOUT
})

/** A broker failure as the error callers handle. */
export const unavailable = (config: Pick<KafkaConfig, "brokers">) => (error: unknown) =>
  new ServiceUnavailable({ service: "kafka", reason: `brokers ${config.brokers.join(",")}: ${rootReason(error)}` })

const levels: Partial<Record<logLevel, LogLevel.LogLevel>> = {
  [logLevel.ERROR]: LogLevel.Error,
  [logLevel.WARN]: LogLevel.Warning,
  [logLevel.INFO]: LogLevel.Info,
  [logLevel.DEBUG]: LogLevel.Debug
}

/**
 * A kafkajs client. Its own logging goes through Effect's logger (JSON lines like
 * everything else), warnings and errors only: its info level narrates every
 * group join and connection.
 */
export const make = (config: KafkaConfig): Effect.Effect<Kafka> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    return new Kafka({
      clientId: config.clientId,
      brokers: [...config.brokers],
      connectionTimeout: Duration.toMillis(config.connectionTimeout),
      requestTimeout: Duration.toMillis(config.requestTimeout),
      logLevel: logLevel.WARN,
      logCreator: () => ({ namespace, level, log: { message, timestamp: _timestamp, logger: _logger, ...extra } }) =>
        log(
          Effect.logWithLevel(levels[level] ?? LogLevel.Info, message).pipe(
            Effect.annotateLogs({ component: "kafkajs", namespace, ...extra })
          )
        )
    })
  })

/**
 * A connected producer, disconnected when the scope closes. Idempotent (the broker
 * drops a retried duplicate) with acknowledgement from all in-sync replicas; one
 * request in flight, which kafkajs needs to keep an idempotent producer's order.
 */
export const producer = (
  kafka: Kafka,
  config: Pick<KafkaConfig, "brokers">,
  options: Partial<ProducerConfig> = {}
): Effect.Effect<Producer, ServiceUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        ...options
      })
      return Effect.tryPromise({ try: () => producer.connect(), catch: unavailable(config) }).pipe(Effect.as(producer))
    }),
    (producer) => Effect.promise(() => producer.disconnect().catch(() => undefined))
  )
