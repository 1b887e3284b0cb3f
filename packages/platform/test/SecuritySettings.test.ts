/**
 * The TLS and Kafka security settings as an operator writes them: complete sets
 * become settings, half sets fail naming the variable to add, and a password stays
 * redacted.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Config as ConfigFx, ConfigProvider, Duration, Effect, Redacted } from "effect"
import * as Config from "../src/Config.js"
import * as KafkaSettings from "../src/KafkaSettings.js"

const env = (entries: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)

const server = Config.server({ grpcPort: 8081, httpPort: 8091 })
const kafka = KafkaSettings.config({ clientId: "test" })

/** The problems of a configuration that cannot be read, as the service would print them. */
const problems = <A>(config: ConfigFx.Config<A>, entries: Record<string, string>) =>
  Effect.flip(Effect.withConfigProvider(config, env(entries))).pipe(
    Effect.map((error) => Config.ConfigurationError.fromConfigError(error).problems)
  )

describe("TLS settings", () => {
  it.effect("none: plaintext; a certificate and key: TLS, client certificates demanded on Effect RPC with a CA", () =>
    Effect.gen(function*() {
      assert.isUndefined((yield* Effect.withConfigProvider(server, env({}))).tls)
      const tls = (yield* Effect.withConfigProvider(
        server,
        env({
          SERVER_TLS_CERT_FILE: "/tls/tls.crt",
          SERVER_TLS_KEY_FILE: "/tls/tls.key",
          SERVER_TLS_CA_FILE: "/tls/ca.crt"
        })
      )).tls
      assert.deepStrictEqual(tls, {
        certFile: "/tls/tls.crt",
        keyFile: "/tls/tls.key",
        caFile: "/tls/ca.crt",
        clientAuth: "rpc",
        reloadInterval: Duration.seconds(10)
      })
    }))

  it.effect("half a set fails naming the variable to add", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* problems(server, { SERVER_TLS_CERT_FILE: "/tls/tls.crt" }), [
        "SERVER_TLS_KEY_FILE (server.tls.keyFile in CONFIG_FILE): must be set with SERVER_TLS_CERT_FILE"
      ])
      assert.deepStrictEqual(yield* problems(server, { SERVER_TLS_CA_FILE: "/tls/ca.crt" }), [
        "SERVER_TLS_CA_FILE (server.tls.caFile in CONFIG_FILE): needs SERVER_TLS_CERT_FILE and SERVER_TLS_KEY_FILE too"
      ])
      const [clientAuth] = yield* problems(server, {
        SERVER_TLS_CERT_FILE: "/tls/tls.crt",
        SERVER_TLS_KEY_FILE: "/tls/tls.key",
        SERVER_TLS_CLIENT_AUTH: "some"
      })
      assert.include(clientAuth, "SERVER_TLS_CLIENT_AUTH")
    }))
})

describe("Kafka security settings", () => {
  it.effect("SASL and a CA file: TLS on, the password redacted", () =>
    Effect.gen(function*() {
      const config = yield* Effect.withConfigProvider(
        kafka,
        env({
          KAFKA_BROKERS: "kafka:9094",
          KAFKA_TLS_CA_FILE: "/kafka/ca.pem",
          KAFKA_SASL_MECHANISM: "scram-sha-512",
          KAFKA_SASL_USERNAME: "rating",
          KAFKA_SASL_PASSWORD: "s3cret"
        })
      )
      assert.deepStrictEqual(config.tls, { caFile: "/kafka/ca.pem" })
      assert.strictEqual(config.sasl?.mechanism, "scram-sha-512")
      assert.strictEqual(config.sasl?.username, "rating")
      assert.strictEqual(Redacted.value(config.sasl!.password), "s3cret")
      assert.notInclude(JSON.stringify(config), "s3cret")
      assert.notInclude(String(config.sasl!.password), "s3cret")
    }))

  it.effect("none: plaintext without SASL; KAFKA_TLS_ENABLED alone: TLS trusting the system's CAs", () =>
    Effect.gen(function*() {
      const plain = yield* Effect.withConfigProvider(kafka, env({ KAFKA_BROKERS: "kafka:9092" }))
      assert.isUndefined(plain.tls)
      assert.isUndefined(plain.sasl)
      const system = yield* Effect.withConfigProvider(
        kafka,
        env({ KAFKA_BROKERS: "kafka:9093", KAFKA_TLS_ENABLED: "true" })
      )
      assert.deepStrictEqual(system.tls, {})
    }))

  it.effect("half a SASL set, or half a client certificate, fails naming the variable to add", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problems(kafka, {
          KAFKA_BROKERS: "kafka:9094",
          KAFKA_SASL_USERNAME: "rating",
          KAFKA_SASL_PASSWORD: "x"
        }),
        ["KAFKA_SASL_MECHANISM (kafka.sasl.mechanism in CONFIG_FILE): must be set with the other KAFKA_SASL_* settings"]
      )
      assert.deepStrictEqual(
        yield* problems(kafka, { KAFKA_BROKERS: "kafka:9094", KAFKA_TLS_CERT_FILE: "/kafka/client.pem" }),
        ["KAFKA_TLS_KEY_FILE (kafka.tls.keyFile in CONFIG_FILE): must be set with KAFKA_TLS_CERT_FILE"]
      )
    }))
})
