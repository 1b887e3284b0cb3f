/**
 * The settings each movieapp service reads, taken from its own code: its `*Config`
 * (and the configs its composition root reads besides, such as `Mysql.config`)
 * evaluated against a provider that records every variable asked for, in the
 * environment's CONSTANT_CASE spelling. The deployment files are checked against
 * this, so a key the code does not read, a missing required key or an invalid
 * value fails a test.
 */
import { MetadataConfig } from "@movieapp/metadata/MetadataConfig"
import { MovieConfig } from "@movieapp/movie/MovieConfig"
import type { ServerConfig } from "@movieapp/platform/Config"
import * as DiscoveryConsul from "@movieapp/platform/DiscoveryConsul"
import * as DiscoveryDns from "@movieapp/platform/DiscoveryDns"
import * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Telemetry from "@movieapp/platform/Telemetry"
import * as RatingEventSourceKafka from "@movieapp/rating/adapters/RatingEventSourceKafka"
import { RatingConfig } from "@movieapp/rating/RatingConfig"
import {
  Config,
  ConfigError,
  ConfigProvider,
  ConfigProviderPathPatch,
  Duration,
  Effect,
  Either,
  HashSet,
  Option
} from "effect"

export interface Evaluation<A> {
  /** Every variable the config asked for, whether present or not. */
  readonly read: ReadonlySet<string>
  readonly result: Either.Either<A, ConfigError.ConfigError>
}

/** Evaluates `config` on `env` as a service would (environment, CONSTANT_CASE), recording what it reads. */
export const evaluate = <A>(config: Config.Config<A>, env: Readonly<Record<string, string>>): Evaluation<A> => {
  const read = new Set<string>()
  const flat = ConfigProvider.makeFlat({
    load: (path, primitive) => {
      const name = path.join("_")
      read.add(name)
      const text = env[name]
      return text === undefined
        ? Effect.fail(ConfigError.MissingData([...path], `Expected ${name} to exist in the environment`))
        : Effect.mapBoth(primitive.parse(text), {
          onFailure: ConfigError.prefixed([...path]),
          onSuccess: (value) => [value]
        })
    },
    enumerateChildren: () => Effect.succeed(HashSet.empty()),
    patch: ConfigProviderPathPatch.empty
  })
  const provider = ConfigProvider.fromFlat(flat).pipe(ConfigProvider.constantCase)
  return { read, result: Effect.runSync(Effect.either(provider.load(config))) }
}

/** A service as its composition root configures it. */
export interface Service {
  readonly config: Config.Config<{ readonly server: ServerConfig }>
  /** The other configs main.ts reads, given the service's own settings. */
  readonly parts: (settings: any) => ReadonlyArray<Config.Config<unknown>>
  /** Every config main.ts may read (for the set of keys the service can read). */
  readonly everyPart: ReadonlyArray<Config.Config<unknown>>
  /**
   * What a graceful stop waits for after the servers have drained
   * (SERVER_SHUTDOWN_TIMEOUT), one after the other, given the service's settings
   * (the trace flush last: the tracer outlives everything it traces).
   */
  readonly afterDrain: (settings: any) => ReadonlyArray<Config.Config<Duration.Duration>>
}

type Settings<C> = C extends Config.Config<infer A> ? A : never

/** The discovery settings main.ts reads; with DNS, the addresses of the services it calls. */
const discovery = (calls: ReadonlyArray<string>) => (settings: { readonly discovery: "memory" | "consul" | "dns" }) =>
  settings.discovery === "consul"
    ? [DiscoveryConsul.config]
    : settings.discovery === "dns"
    ? [DiscoveryDns.config(calls)]
    : []

/** With a trace endpoint, the stop ends flushing pending spans, for at most Telemetry.SHUTDOWN_TIMEOUT. */
const traceFlush = (settings: { readonly tracing: Telemetry.TracingConfig }) =>
  Option.isSome(settings.tracing.endpoint) ? [Config.succeed(Telemetry.SHUTDOWN_TIMEOUT)] : []

/**
 * Mirrors each `packages/<service>/src/main.ts`: when main.ts starts reading a
 * config (tracing, say), add it here.
 */
export const services: Readonly<Record<"metadata" | "rating" | "movie", Service>> = {
  metadata: {
    config: MetadataConfig,
    parts: (settings: Settings<typeof MetadataConfig>) => [
      ...(settings.repository === "mysql" ? [Mysql.config] : []),
      ...discovery([])(settings)
    ],
    everyPart: [Mysql.config, DiscoveryConsul.config, DiscoveryDns.config([])],
    afterDrain: traceFlush
  },
  rating: {
    config: RatingConfig,
    parts: (settings: Settings<typeof RatingConfig>) => [
      ...(settings.repository === "mysql" ? [Mysql.config] : []),
      ...(settings.ingestion === "kafka" ? [RatingEventSourceKafka.config] : []),
      ...discovery([])(settings)
    ],
    everyPart: [Mysql.config, RatingEventSourceKafka.config, DiscoveryConsul.config, DiscoveryDns.config([])],
    // The servers stop first; then the Kafka consumer finishes the batch in hand (RatingServer, main.ts).
    afterDrain: (settings: Settings<typeof RatingConfig>) => [
      ...(settings.ingestion === "kafka" ? [Config.map(RatingEventSourceKafka.config, (c) => c.drainTimeout)] : []),
      ...traceFlush(settings)
    ]
  },
  movie: {
    config: MovieConfig,
    parts: discovery(["metadata", "rating"]),
    everyPart: [DiscoveryConsul.config, DiscoveryDns.config(["metadata", "rating"])],
    afterDrain: traceFlush
  }
}

export type ServiceName = keyof typeof services

export const isService = (name: string): name is ServiceName => Object.hasOwn(services, name)

/** Read by Node itself when a program starts (heap size, for one). */
const nodeRuntime = ["NODE_OPTIONS"]

/** Every variable `service` (or Node running it) can read. */
export const readable = (service: ServiceName): ReadonlySet<string> => {
  const { config, everyPart } = services[service]
  return new Set([...nodeRuntime, ...[config, ...everyPart].flatMap((c) => [...evaluate(c, {}).read])])
}

export interface Check {
  /** Keys in the environment that the service never reads. */
  readonly unread: ReadonlyArray<string>
  /** Why the service would not start with this environment (missing or invalid keys). */
  readonly errors: ReadonlyArray<string>
  /** The server settings it would run with, when it would start. */
  readonly server: ServerConfig | undefined
  /**
   * The longest a graceful stop waits on its own timeouts, when it would start:
   * the servers' drain, then whatever follows it (a Kafka consumer's batch).
   */
  readonly stopTimeout: Duration.Duration | undefined
}

/** What `service` makes of `env`: the keys it ignores, and whether its configuration holds. */
export const check = (service: ServiceName, env: Readonly<Record<string, string>>): Check => {
  const unread = Object.keys(env).filter((key) => !readable(service).has(key)).sort()
  const main = evaluate(services[service].config, env)
  if (Either.isLeft(main.result)) {
    return { unread, errors: [String(main.result.left)], server: undefined, stopTimeout: undefined }
  }
  const settings = main.result.right
  const errors = services[service].parts(settings).flatMap((part) => {
    const { result } = evaluate(part, env)
    return Either.isLeft(result) ? [String(result.left)] : []
  })
  const afterDrain = services[service].afterDrain(settings).map((part) => evaluate(part, env).result)
  const stopTimeout = errors.length > 0 || afterDrain.some(Either.isLeft)
    ? undefined
    : afterDrain.reduce((total, part) => Duration.sum(total, Either.getOrThrow(part)), settings.server.shutdownTimeout)
  return { unread, errors, server: settings.server, stopTimeout }
}

/** How rating events travel: through a Kafka topic, or submitted to the rating service over Effect RPC. */
export type EventRoute =
  | { readonly via: "kafka"; readonly brokers: ReadonlyArray<string>; readonly topic: string }
  | { readonly via: "rpc" }

/** Where the rating service takes rating events from with `env`, as its main.ts picks; undefined when it would not start. */
export const ratingEventsFrom = (env: Readonly<Record<string, string>>): EventRoute | undefined => {
  const main = evaluate(RatingConfig, env).result
  if (Either.isLeft(main)) return undefined
  if (main.right.ingestion !== "kafka") return { via: "rpc" }
  const source = evaluate(RatingEventSourceKafka.config, env).result
  return Either.isLeft(source)
    ? undefined
    : { via: "kafka", brokers: source.right.kafka.brokers, topic: source.right.kafka.topic }
}

/**
 * Where the ingestor publishes, given its arguments and environment. Mirrors
 * `packages/ratingingestor/src/main.ts`: `--kafka-brokers` or KAFKA_BROKERS, on
 * `--topic` or KAFKA_TOPIC (default `ratings`); without brokers, the rating
 * service over Effect RPC.
 */
export const ingestorPublishesTo = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): EventRoute => {
  const option = (name: string): string | undefined => {
    const at = args.indexOf(`--${name}`)
    return at >= 0 ? args[at + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
  }
  const brokers = option("kafka-brokers") ?? env.KAFKA_BROKERS
  if (brokers === undefined) return { via: "rpc" }
  return {
    via: "kafka",
    brokers: Either.getOrThrowWith(
      KafkaSettings.parseBrokers(brokers),
      (reason) => new Error(`ingestor brokers: ${reason}`)
    ),
    topic: option("topic") ?? env.KAFKA_TOPIC ?? KafkaSettings.DEFAULT_TOPIC
  }
}

/**
 * The environment the ingestor reads besides its arguments. Mirrors
 * `packages/ratingingestor/src/main.ts`: RATING_ADDRESS, KAFKA_BROKERS and KAFKA_TOPIC
 * as fallbacks of its options, and tracing (Telemetry.config) as the services do.
 */
export const ingestorReadable: ReadonlySet<string> = new Set([
  "RATING_ADDRESS",
  "KAFKA_BROKERS",
  "KAFKA_TOPIC",
  ...evaluate(Telemetry.config, {}).read
])

/** What the ingestor makes of `env`: the keys it ignores, and why it would stop at once (invalid settings). */
export const checkIngestor = (env: Readonly<Record<string, string>>): Pick<Check, "unread" | "errors"> => {
  const unread = Object.keys(env).filter((key) => !ingestorReadable.has(key)).sort()
  const tracing = evaluate(Telemetry.config, env).result
  const brokers = env.KAFKA_BROKERS === undefined ? undefined : KafkaSettings.parseBrokers(env.KAFKA_BROKERS)
  const errors = [
    ...(Either.isLeft(tracing) ? [String(tracing.left)] : []),
    ...(brokers !== undefined && Either.isLeft(brokers) ? [`KAFKA_BROKERS: ${brokers.left}`] : [])
  ]
  return { unread, errors }
}

/** The trace export a program's environment configures: none when tracing is off; undefined when invalid. */
export const tracing = (env: Readonly<Record<string, string>>): Telemetry.TracingConfig | undefined =>
  Either.getOrUndefined(evaluate(Telemetry.config, env).result)
