/**
 * Apache Kafka through kafkajs, for the programs that publish or consume rating
 * events: configuration, a client whose logs go through Effect's logger, scoped
 * producers, and the one rule for broker failures: they reach callers as
 * ServiceUnavailable with the root reason, never as a kafkajs stack.
 */
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import {
  Array,
  Config,
  ConfigError,
  Data,
  Duration,
  Effect,
  Either,
  LogLevel,
  Option,
  Redacted,
  Runtime,
  type Scope
} from "effect"
import { Kafka, logLevel, Partitioners, type Producer, type ProducerConfig, type SASLOptions } from "kafkajs"
import type { ConnectionOptions } from "node:tls"
import { environmentName } from "./Config.js"
import * as ErrorChain from "./ErrorChain.js"
import { rootReason } from "./ErrorChain.js"
import * as Tls from "./Tls.js"

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
  /** TLS to the brokers; plaintext when absent. */
  readonly tls?: KafkaTls | undefined
  /** SASL authentication (over TLS, as a SASL_SSL listener wants it); none when absent. */
  readonly sasl?: KafkaSasl | undefined
}

/** `kafka.tls.*`: TLS to the brokers, trusting `caFile` (else the system's CAs), presenting a certificate when given. */
export interface KafkaTls {
  readonly caFile?: string | undefined
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
}

/** `kafka.sasl.*`: SCRAM credentials; the password stays redacted everywhere but in the handshake. */
export interface KafkaSasl {
  readonly mechanism: "scram-sha-256" | "scram-sha-512"
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

/** The variables of the security settings, for messages. */
export const securitySettings = {
  mechanism: environmentName(["kafka", "sasl", "mechanism"]),
  username: environmentName(["kafka", "sasl", "username"]),
  password: environmentName(["kafka", "sasl", "password"]),
  caFile: environmentName(["kafka", "tls", "caFile"])
} as const

/**
 * `KAFKA_TLS_ENABLED` (true/false; implied by any `KAFKA_TLS_*_FILE`), `KAFKA_TLS_CA_FILE`,
 * `KAFKA_TLS_CERT_FILE`, `KAFKA_TLS_KEY_FILE`; `KAFKA_SASL_MECHANISM`
 * (`scram-sha-256` or `scram-sha-512`), `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`.
 * Read under `kafka` by {@link config}; the ingestor reads them on their own.
 */
export const security: Config.Config<Pick<KafkaConfig, "tls" | "sasl">> = Config.all({
  tls: Config.all({
    enabled: Config.boolean("enabled").pipe(Config.option),
    caFile: Config.nonEmptyString("caFile").pipe(Config.option),
    certFile: Config.nonEmptyString("certFile").pipe(Config.option),
    keyFile: Config.nonEmptyString("keyFile").pipe(Config.option)
  }).pipe(Config.nested("tls")),
  sasl: Config.all({
    mechanism: Config.literal("scram-sha-256", "scram-sha-512")("mechanism").pipe(Config.option),
    username: Config.nonEmptyString("username").pipe(Config.option),
    password: Config.redacted("password").pipe(Config.option)
  }).pipe(Config.nested("sasl"))
}).pipe(
  Config.mapOrFail(({ sasl, tls }) => {
    const files = {
      ...Option.match(tls.caFile, { onNone: () => ({}), onSome: (caFile) => ({ caFile }) }),
      ...Option.match(tls.certFile, { onNone: () => ({}), onSome: (certFile) => ({ certFile }) }),
      ...Option.match(tls.keyFile, { onNone: () => ({}), onSome: (keyFile) => ({ keyFile }) })
    }
    if (Option.isSome(tls.certFile) !== Option.isSome(tls.keyFile)) {
      const [missing, given] = Option.isSome(tls.certFile) ? ["keyFile", "certFile"] : ["certFile", "keyFile"]
      return Either.left(
        ConfigError.InvalidData(["tls", missing], `must be set with ${environmentName(["kafka", "tls", given])}`)
      )
    }
    const tlsOn = Option.getOrElse(tls.enabled, () => Object.keys(files).length > 0)
    const secured = tlsOn ? { tls: files } : {}
    const { mechanism, password, username } = sasl
    if (Option.isSome(mechanism) && Option.isSome(username) && Option.isSome(password)) {
      return Either.right({
        ...secured,
        sasl: { mechanism: mechanism.value, username: username.value, password: password.value }
      })
    }
    const missing = Option.isNone(mechanism) ? "mechanism" : Option.isNone(username) ? "username" : "password"
    return Option.isNone(mechanism) && Option.isNone(username) && Option.isNone(password)
      ? Either.right(secured)
      : Either.left(ConfigError.InvalidData(["sasl", missing], "must be set with the other KAFKA_SASL_* settings"))
  })
)

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
    requestTimeout: Config.duration("requestTimeout").pipe(Config.withDefault(DEFAULT_REQUEST_TIMEOUT)),
    security
  }).pipe(
    Config.map(({ security, ...rest }): KafkaConfig => ({ ...rest, ...security })),
    Config.nested("kafka")
  )

/** A comma-separated `host:port` list, as `KAFKA_BROKERS` and the ingestor's `--kafka-brokers` take it. */
export const parseBrokers = (text: string): Either.Either<Array.NonEmptyReadonlyArray<string>, string> => {
  const brokers = text.split(",").map((broker) => broker.trim()).filter((broker) => broker !== "")
  const bad = brokers.find((broker) => !/^[^\s:/]+:\d{1,5}$/.test(broker))
  if (bad !== undefined) return Either.left(`expected host:port, got "${bad}"`)
  return Array.isNonEmptyReadonlyArray(brokers) ? Either.right(brokers) : Either.left("expected at least one host:port")
}

/** Defaults for everything but the brokers. */
export const defaults = (
  brokers: Array.NonEmptyReadonlyArray<string>,
  clientId: string,
  secured: Pick<KafkaConfig, "tls" | "sasl"> = {}
): KafkaConfig => ({
  ...secured,
  brokers,
  clientId,
  topic: DEFAULT_TOPIC,
  connectionTimeout: DEFAULT_CONNECTION_TIMEOUT,
  requestTimeout: DEFAULT_REQUEST_TIMEOUT
})

/** A broker failure as the error callers handle. */
export const unavailable = (config: Pick<KafkaConfig, "brokers">) => (error: unknown) =>
  new ServiceUnavailable({
    service: "kafka",
    reason: accessError(config, error)?.message ?? `brokers ${config.brokers.join(",")}: ${rootReason(error)}`
  })

/** Errors of TLS verification: the broker is not who the CA says, or the CA is not the broker's. */
const TLS_VERIFY_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

/**
 * The brokers refused this client: its SASL credentials, what their ACLs allow
 * it, or the TLS certificate one presented. Retrying cannot help; the process
 * stops with this line.
 */
export class KafkaAccessError extends Data.TaggedError("KafkaAccessError")<{
  readonly brokers: string
  readonly reason: string
  readonly fix: string
}> {
  constructor(props: { readonly brokers: string; readonly reason: string; readonly fix: string }) {
    super(props)
    // An operator's problem: the line says what to fix.
    this.stack = `${this.name}: ${this.message}`
  }

  override get message() {
    return `Kafka (brokers ${this.brokers}) refused this client: ${this.reason}; ${this.fix}`
  }
}

/** A failure that no retry will cure (wrong credentials, an untrusted broker), as a {@link KafkaAccessError}. */
export const accessError = (config: Pick<KafkaConfig, "brokers">, error: unknown): KafkaAccessError | undefined => {
  const brokers = config.brokers.join(",")
  const sasl = ErrorChain.find(
    error,
    (link): link is Error => link instanceof Error && link.name === "KafkaJSSASLAuthenticationError"
  )
  if (sasl !== undefined) {
    return new KafkaAccessError({
      brokers,
      reason: sasl.message,
      fix:
        `check ${securitySettings.username}, ${securitySettings.password} and ${securitySettings.mechanism} (the user's SCRAM mechanism)`
    })
  }
  const denied = ErrorChain.find(
    error,
    (link): link is { readonly type: string } =>
      /_AUTHORIZATION_FAILED$/.test(String((link as { readonly type?: unknown }).type))
  )
  if (denied !== undefined) {
    return new KafkaAccessError({
      brokers,
      reason: `not authorized (${denied.type})`,
      fix: "the brokers' ACLs must grant this user the operation (see docs/ingestion.md, who can write to the topic)"
    })
  }
  const tls = ErrorChain.find(
    error,
    (link): link is { readonly code: string } =>
      TLS_VERIFY_CODES.has(String((link as { readonly code?: unknown }).code))
  )
  if (tls !== undefined) {
    return new KafkaAccessError({
      brokers,
      reason: `the broker's TLS certificate cannot be verified (${tls.code})`,
      fix: `set ${securitySettings.caFile} to the CA that signed the brokers' certificates`
    })
  }
  return undefined
}

/**
 * Connects once to learn whether the brokers accept this client: fails with a
 * {@link KafkaAccessError} when they refuse its credentials or cannot be
 * trusted; succeeds otherwise, even when they cannot be reached (a broker that
 * is down is waited for by whoever uses it).
 */
export const checkAccess = (config: KafkaConfig): Effect.Effect<void, KafkaAccessError | Tls.TlsError> =>
  Effect.acquireUseRelease(
    // One attempt: a broker that is down must not hold the start up here.
    Effect.map(make(config, { retries: 0 }), (kafka) => kafka.admin({ retry: { retries: 0 } })),
    (admin) =>
      Effect.tryPromise(() => admin.connect()).pipe(
        Effect.catchAll((error) => {
          const refused = accessError(config, error.error)
          return refused === undefined ? Effect.void : Effect.fail(refused)
        })
      ),
    (admin) => Effect.promise(() => admin.disconnect().catch(() => undefined))
  )

const levels: Partial<Record<logLevel, LogLevel.LogLevel>> = {
  [logLevel.ERROR]: LogLevel.Error,
  [logLevel.WARN]: LogLevel.Warning,
  [logLevel.INFO]: LogLevel.Info,
  [logLevel.DEBUG]: LogLevel.Debug
}

/**
 * The files are read when the client is made (kafkajs opens connections with these
 * options as they are); one that cannot be read stops the start, named by its setting.
 */
const tlsOptions = (tls: KafkaTls): Effect.Effect<ConnectionOptions, Tls.TlsError> =>
  Effect.gen(function*() {
    const read = (file: keyof KafkaTls, path: string | undefined) =>
      path === undefined ? Effect.succeed(undefined) : Tls.readOne(environmentName(["kafka", "tls", file]), path)
    const ca = yield* read("caFile", tls.caFile)
    const cert = yield* read("certFile", tls.certFile)
    const key = yield* read("keyFile", tls.keyFile)
    return {
      ...(ca === undefined ? {} : { ca: [ca] }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key })
    }
  })

const saslOptions = (sasl: KafkaSasl): SASLOptions =>
  sasl.mechanism === "scram-sha-256"
    ? { mechanism: "scram-sha-256", username: sasl.username, password: Redacted.value(sasl.password) }
    : { mechanism: "scram-sha-512", username: sasl.username, password: Redacted.value(sasl.password) }

/**
 * A kafkajs client. Its own logging goes through Effect's logger (JSON lines like
 * everything else), warnings and errors only: its info level narrates every
 * group join and connection. `retry` replaces kafkajs's retries of a failed
 * connection or request (5, with growing delays, by default).
 */
export const make = (config: KafkaConfig, retry?: { readonly retries: number }): Effect.Effect<Kafka, Tls.TlsError> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    const ssl = config.tls === undefined ? undefined : yield* tlsOptions(config.tls)
    return new Kafka({
      clientId: config.clientId,
      brokers: [...config.brokers],
      ...(ssl === undefined ? {} : { ssl }),
      ...(config.sasl === undefined ? {} : { sasl: saslOptions(config.sasl) }),
      ...(retry === undefined ? {} : { retry: { retries: retry.retries } }),
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
