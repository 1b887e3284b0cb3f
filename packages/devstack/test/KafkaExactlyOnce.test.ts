/**
 * Exactly-once ingestion through real processes, a real broker and MariaDB: the
 * ingestor publishes synthetic events, a rating service consuming them is killed
 * (SIGKILL) several times mid-stream and restarted, and in the end the stored
 * ratings and aggregates equal an independent computation over the published
 * events: nothing lost, nothing counted twice.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RatingEventPublisherKafka from "@movieapp/ratingingestor/adapters/RatingEventPublisherKafka"
import * as Ingest from "@movieapp/ratingingestor/Ingest"
import * as Synthetic from "@movieapp/ratingingestor/Synthetic"
import { independently } from "@movieapp/testkit/ExpectedRatings"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as Logs from "@movieapp/testkit/Logs"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as Poll from "@movieapp/testkit/Poll"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect, Redacted, Schema } from "effect"

const ready = (await MariaDb.available()) && (await TestKafka.available())

const Count = Schema.Union(Schema.Number, Schema.NumberFromString)

describe.skipIf(!ready)("Kafka ingestion, exactly once (processes, real broker and MariaDB)", () => {
  it.live(
    "a consumer killed mid-stream and restarted ends equal to an independent computation",
    () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const sql = yield* MariaDb.client(database)
        const topic = TestKafka.unique("ratings")
        const group = TestKafka.unique("rating")
        yield* TestKafka.createTopic(topic, 3)

        const workload = { count: 30_000, seed: 11, records: 40, users: 300, deleteRatio: 0.15 }
        yield* Ingest.runGenerated({ ...workload, batchSize: 2_000 }).pipe(
          Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) })),
          // Its Info lines (what it publishes) are not this test's subject.
          Effect.provide(Logs.make().layer)
        )
        const expected = independently(Synthetic.generate(workload))

        const env = {
          ...(yield* Tokens.serviceEnv),
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0",
          LOG_LEVEL: "warn",
          REPOSITORY: "mysql",
          MYSQL_HOST: database.host,
          MYSQL_PORT: String(database.port),
          MYSQL_DATABASE: database.database,
          MYSQL_USER: database.user,
          MYSQL_PASSWORD: Redacted.value(database.password),
          INGESTION: "kafka",
          KAFKA_BROKERS: TestKafka.brokers.join(","),
          KAFKA_TOPIC: topic,
          KAFKA_GROUP: group,
          KAFKA_DEAD_LETTER_TOPIC: `${topic}.dead-letter`,
          // Small batches, so that a kill lands in the middle of the stream.
          KAFKA_MAX_BYTES_PER_PARTITION: "8192",
          // A killed member's partitions move to the next one after this long.
          KAFKA_SESSION_TIMEOUT: "6 seconds"
        }
        // Events stored so far: the sum of the partitions' checkpoints (offsets start at 0).
        const stored = sql`SELECT COALESCE(SUM(next_position), 0) AS n FROM rating_event_checkpoints`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ n: Count })))),
          Effect.map(([row]) => row.n)
        )

        for (const share of [0.2, 0.5, 0.8]) {
          yield* Effect.scoped(Effect.gen(function*() {
            const consumer = yield* ServiceProcess.start("packages/rating/src/main.ts", env)
            yield* consumer.whileRunning(Poll.until(stored, (n) => n >= share * workload.count, {
              what: `${share * 100}% of the events to be stored`,
              timeout: "120 seconds",
              interval: "20 millis"
            }))
            yield* consumer.kill("SIGKILL")
            const exit = yield* consumer.exited
            assert.strictEqual(exit.signal, "SIGKILL")
          }))
        }
        const last = yield* ServiceProcess.start("packages/rating/src/main.ts", env)
        yield* last.whileRunning(TestKafka.awaitCaughtUp(group, topic, "120 seconds"))
        assert.strictEqual(yield* stored, workload.count)

        const ratings = yield* sql`SELECT record_type, record_id, user_id, value FROM ratings`.pipe(
          Effect.flatMap(
            Schema.decodeUnknown(
              Schema.Array(
                Schema.Struct({
                  record_type: Schema.String,
                  record_id: Schema.String,
                  user_id: Schema.String,
                  value: Schema.Number
                })
              )
            )
          )
        )
        assert.deepStrictEqual(
          new Map(ratings.map((r) => [`${r.record_type}/${r.record_id}/${r.user_id}`, r.value])),
          expected.ratings
        )
        const aggregates =
          yield* sql`SELECT record_type, record_id, ratings_count, ratings_sum FROM rating_aggregates WHERE ratings_count <> 0`
            .pipe(
              Effect.flatMap(
                Schema.decodeUnknown(
                  Schema.Array(
                    Schema.Struct({
                      record_type: Schema.String,
                      record_id: Schema.String,
                      ratings_count: Count,
                      ratings_sum: Count
                    })
                  )
                )
              )
            )
        assert.deepStrictEqual(
          new Map(
            aggregates.map((a) => [`${a.record_type}/${a.record_id}`, { count: a.ratings_count, sum: a.ratings_sum }])
          ),
          new Map(
            [...expected.aggregates].filter(([, a]) => a.count > 0).map((
              [key, a]
            ) => [key, { count: a.count, sum: a.sum }])
          )
        )

        // A graceful stop: finish, commit, leave the group, exit 0.
        yield* last.kill("SIGTERM")
        assert.strictEqual((yield* last.exited).code, 0)
        assert.strictEqual((yield* TestKafka.describeGroup(group)).members, 0)
      }).pipe(Effect.scoped, Effect.provide(Tokens.layer)),
    { timeout: 300_000 }
  )
})
