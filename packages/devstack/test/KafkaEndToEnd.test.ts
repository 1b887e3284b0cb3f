/**
 * End to end through Kafka: the ingestor program publishes the sample ratings
 * file to a real broker; the rating service (MariaDB storage, Kafka ingestion)
 * consumes them; the gateway answers each movie's details with the aggregate an
 * independent computation over the file gives.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as Mysql from "@movieapp/platform/Mysql"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as RatingEventSourceKafka from "@movieapp/rating/adapters/RatingEventSourceKafka"
import * as RatingRepositoryMysql from "@movieapp/rating/adapters/RatingRepositoryMysql"
import { RatingEventInbox } from "@movieapp/rating/ports/RatingEventInbox"
import { independently } from "@movieapp/testkit/ExpectedRatings"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as Poll from "@movieapp/testkit/Poll"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Duration, Effect, Either, Layer } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as System from "../src/System.js"

const ready = (await MariaDb.available()) && (await TestKafka.available())

const sample = (name: string) => fileURLToPath(new URL(`../sample/${name}`, import.meta.url))
const movies: ReadonlyArray<{ id: string; title: string; description: string; director: string }> = JSON.parse(
  readFileSync(sample("movies.json"), "utf8")
)
const ratings = (JSON.parse(readFileSync(sample("ratings.json"), "utf8")) as ReadonlyArray<unknown>).map((record) =>
  Either.getOrThrow(RatingEventJson.decode(record))
)

describe.skipIf(!ready)("end to end through Kafka (ingestor process, real broker, MariaDB)", () => {
  it.live("the gateway answers with the aggregates of the published file", () =>
    Effect.gen(function*() {
      const database = yield* MariaDb.makeTestDatabase
      const topic = TestKafka.unique("ratings")
      const group = TestKafka.unique("rating")
      yield* TestKafka.createTopic(topic, 3)
      const rating = Layer.mergeAll(
        RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations))),
        RatingEventSourceKafka.layer({
          ...RatingEventSourceKafka.defaults(TestKafka.config(topic)),
          group,
          sessionTimeout: Duration.seconds(6)
        }),
        RatingEventInbox.layerClosed("events come from Kafka")
      )
      const context = yield* Layer.build(System.layerTest({ ratingAdapters: rating }))
      const at = (ports: { readonly grpc: number }) => `127.0.0.1:${ports.grpc}`
      const metadata = yield* Grpc.client(
        v1Metadata.MetadataServiceClient,
        at(yield* Effect.provide(MetadataServer.Ports, context))
      )
      const gateway = yield* Grpc.client(
        v1Movie.MovieServiceClient,
        at(yield* Effect.provide(MovieServer.Ports, context))
      )
      const editor = { metadata: yield* Effect.provide(Tokens.editor, context) }
      for (const movie of movies) yield* Grpc.call(Grpc.method(metadata, "putMetadata"), { metadata: movie }, editor)

      const ingestor = yield* ServiceProcess.start(
        "packages/ratingingestor/src/main.ts",
        { KAFKA_BROKERS: TestKafka.brokers.join(",") },
        ["--topic", topic, sample("ratings.json")]
      )
      assert.strictEqual((yield* ingestor.exited).code, 0)
      assert.match(
        String(ingestor.logs().at(-1)?.message),
        new RegExp(`^read ${ratings.length}, published ${ratings.length}, skipped 0`)
      )

      const expected = independently(ratings)
      for (const movie of movies) {
        const aggregate = expected.aggregates.get(`movie/${movie.id}`) ?? { count: 0, sum: 0 }
        const details = yield* Poll.until(
          Grpc.call(Grpc.method(gateway, "getMovieDetails"), { movieId: movie.id }),
          (answer) => answer.movieDetails?.ratingsCount === aggregate.count,
          { what: `movie ${movie.id} to show ${aggregate.count} ratings` }
        )
        assert.deepStrictEqual(details.movieDetails, {
          metadata: movie,
          rating: aggregate.count === 0 ? undefined : aggregate.sum / aggregate.count,
          ratingsCount: aggregate.count,
          dampedRating: undefined // set in listings by rating only
        })
      }
    }).pipe(Effect.scoped), { timeout: 180_000 })
})
