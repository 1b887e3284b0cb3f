/**
 * Apache Kafka through kafkajs, for the programs that publish or consume rating
 * events (their settings in KafkaSettings): a client whose logs go through
 * Effect's logger, scoped producers, and the one rule for broker failures: they
 * reach callers as ServiceUnavailable with the root reason, never as a kafkajs
 * stack.
 */
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Data, Duration, Effect, LogLevel, Redacted, Runtime, type Scope } from "effect"
import { Kafka, logLevel, Partitioners, type Producer, type ProducerConfig, type SASLOptions } from "kafkajs"
import type { ConnectionOptions } from "node:tls"
import { environmentName } from "./Config.js"
import * as ErrorChain from "./ErrorChain.js"
import { rootReason } from "./ErrorChain.js"
import { type KafkaConfig, type KafkaSasl, type KafkaTls, securitySettings } from "./KafkaSettings.js"
import * as Tls from "./Tls.js"

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
