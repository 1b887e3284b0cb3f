/**
 * Kafka over SASL_SSL against the real broker's SASL_SSL listener
 * (scripts/kafka.sh: SCRAM over TLS, its certificate from a CA of its own): the
 * ingestor program publishes with SCRAM-SHA-512 and the rating service consumes
 * with SCRAM-SHA-256, end to end; a wrong password, or a broker the configured CA
 * did not sign, stops the start with one clear line that never holds the password.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import * as Kafka from "@movieapp/platform/Kafka"
import type * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingEventSourceKafka from "@movieapp/rating/adapters/RatingEventSourceKafka"
import * as RatingRepositoryMemory from "@movieapp/rating/adapters/RatingRepositoryMemory"
import { RatingEventInbox } from "@movieapp/rating/ports/RatingEventInbox"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Certificates from "@movieapp/testkit/Certificates"
import { independently } from "@movieapp/testkit/ExpectedRatings"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as Logs from "@movieapp/testkit/Logs"
import * as Poll from "@movieapp/testkit/Poll"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import { Cause, Duration, Effect, Either, Exit, Layer } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as System from "../src/System.js"

const ready = (await TestKafka.available()) && (await TestKafka.saslSslAvailable())

const sample = fileURLToPath(new URL("../sample/ratings.json", import.meta.url))
const ratings = (JSON.parse(readFileSync(sample, "utf8")) as ReadonlyArray<unknown>).map((record) =>
  Either.getOrThrow(RatingEventJson.decode(record))
)

/** What the ingestor needs in its environment to publish over SASL_SSL. */
const ingestorEnv = (password: string, username = TestKafka.saslSsl.username) => ({
  KAFKA_BROKERS: TestKafka.saslSsl.brokers.join(","),
  KAFKA_TLS_CA_FILE: TestKafka.saslSsl.caFile,
  KAFKA_SASL_MECHANISM: "scram-sha-512",
  KAFKA_SASL_USERNAME: username,
  KAFKA_SASL_PASSWORD: password
})

/**
 * How building the consumer's layer with `config` ended (its failure, or "started"),
 * and what it logged (kafkajs's own lines among them), captured rather than printed.
 */
const startConsumer = (config: KafkaSettings.KafkaConfig) => {
  const logs = Logs.make()
  return Effect.scoped(Layer.build(RatingEventSourceKafka.layer(RatingEventSourceKafka.defaults(config)))).pipe(
    Effect.exit,
    Effect.map(Exit.match({ onSuccess: () => "started", onFailure: (cause) => Cause.squash(cause) })),
    Effect.map((failure) => ({ failure, logged: JSON.stringify(logs.lines()) })),
    Effect.provide(logs.layer)
  )
}

describe.skipIf(!ready)("Kafka over SASL_SSL (real broker)", () => {
  it.live(
    "the ingestor publishes with SCRAM-SHA-512, the rating service consumes with SCRAM-SHA-256",
    () =>
      Effect.gen(function*() {
        const topic = TestKafka.unique("ratings-sasl")
        yield* TestKafka.createTopic(topic, 3)
        const rating = Layer.mergeAll(
          RatingRepositoryMemory.layer,
          RatingEventSourceKafka.layer({
            ...RatingEventSourceKafka.defaults(TestKafka.saslSslConfig(topic, { mechanism: "scram-sha-256" })),
            group: TestKafka.unique("rating-sasl"),
            sessionTimeout: Duration.seconds(6)
          }),
          RatingEventInbox.layerClosed("events come from Kafka")
        )
        const context = yield* Layer.build(System.layerTest({ ratingAdapters: rating }))
        const ports = yield* Effect.provide(RatingServer.Ports, context)
        const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${ports.grpc}`)

        const ingestor = yield* ServiceProcess.start(
          "packages/ratingingestor/src/main.ts",
          ingestorEnv(TestKafka.saslSsl.password),
          ["--topic", topic, sample]
        )
        assert.strictEqual((yield* ingestor.exited).code, 0, ingestor.stderr().join("\n"))
        assert.match(
          String(ingestor.logs().at(-1)?.message),
          new RegExp(`^read ${ratings.length}, published ${ratings.length}, skipped 0`)
        )
        // Every message went over SASL_SSL; the topic holds them all.
        const ends = yield* TestKafka.endOffsets(topic)
        assert.strictEqual([...ends.values()].reduce((n, end) => n + end, 0n), BigInt(ratings.length))

        const expected = independently(ratings)
        for (const [key, aggregate] of expected.aggregates) {
          const [recordType, recordId] = key.split("/") as [string, string]
          const answer = yield* Poll.until(
            Grpc.call(Grpc.method(client, "getAggregatedRating"), { recordId, recordType }),
            (answer) => Number(answer.ratingsCount) === aggregate.count,
            { what: `${key} to count ${aggregate.count} ratings` }
          )
          assert.strictEqual(answer.ratingValue, aggregate.sum / aggregate.count)
        }
      }).pipe(Effect.scoped),
    { timeout: 180_000 }
  )

  it.live(
    "a wrong password stops the rating consumer's start and the ingestor with one line, never the password",
    () =>
      Effect.gen(function*() {
        const wrong = "not-the-password-0451"
        const topic = TestKafka.unique("ratings-sasl")
        const { failure, logged } = yield* startConsumer(TestKafka.saslSslConfig(topic, { password: wrong }))
        assert.instanceOf(failure, Kafka.KafkaAccessError)
        assert.include(logged, "SASL SCRAM SHA512 authentication failed")
        assert.notInclude(logged, wrong)
        assert.include(String((failure as Error).message), "refused this client")
        assert.include(String((failure as Error).message), "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD")
        assert.notInclude(String((failure as Error).message), wrong)

        const ingestor = yield* ServiceProcess.start(
          "packages/ratingingestor/src/main.ts",
          ingestorEnv(wrong),
          ["--topic", topic, sample]
        )
        assert.strictEqual((yield* ingestor.exited).code, 1)
        const output = [...ingestor.logs().map((line) => JSON.stringify(line)), ...ingestor.stderr()].join("\n")
        assert.include(output, "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD")
        assert.notInclude(output, wrong)
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.live(
    "who can write: a user the ACLs grant nothing is refused, naming why; granted Write on the topic, it publishes",
    () =>
      Effect.gen(function*() {
        const topic = TestKafka.unique("ratings-acl")
        yield* TestKafka.createTopic(topic, 3)
        const { password, username } = TestKafka.saslSsl.limited
        const published = Effect.map(TestKafka.endOffsets(topic), (ends) =>
          [...ends.values()].reduce((n, end) => n + end, 0n))
        const publish = ServiceProcess.start(
          "packages/ratingingestor/src/main.ts",
          ingestorEnv(password, username),
          ["--topic", topic, sample]
        )
        const refused = yield* publish
        assert.strictEqual((yield* refused.exited).code, 1)
        assert.include(refused.stderr().join("\n"), "refused this client: not authorized")
        assert.strictEqual(yield* published, 0n)

        yield* TestKafka.grantWrite(topic, username)
        const granted = yield* publish
        assert.strictEqual((yield* granted.exited).code, 0, granted.stderr().join("\n"))
        assert.strictEqual(yield* published, BigInt(ratings.length))
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.live(
    "a broker whose certificate the configured CA did not sign is refused at start",
    () =>
      Effect.gen(function*() {
        const other = yield* Certificates.authority("not the broker's CA")
        const config = TestKafka.saslSslConfig(TestKafka.unique("ratings-sasl"))
        const { failure } = yield* startConsumer({ ...config, tls: { caFile: other.caFile } })
        assert.instanceOf(failure, Kafka.KafkaAccessError)
        assert.include(String((failure as Error).message), "set KAFKA_TLS_CA_FILE to the CA")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
