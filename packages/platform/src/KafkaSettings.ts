/**
 * Apache Kafka settings, for the programs that publish or consume rating events:
 * the brokers, the topic, TLS and SASL, read from the environment or given on a
 * command line. Apart from the client (Kafka.ts), so that a program can read them
 * without loading kafkajs until it has chosen Kafka.
 */
import { Array, Config, ConfigError, Duration, Either, Option, type Redacted } from "effect"
import { environmentName } from "./Config.js"

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
