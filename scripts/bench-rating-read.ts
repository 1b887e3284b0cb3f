/**
 * GetAggregatedRating latency for a record with 1 rating and a record with
 * 100,000 ratings, measured in one run over real gRPC against a real MariaDB
 * (scripts/mariadb.sh start). Reads never scan ratings, so the two should be
 * within 20% of each other. Prints figures; asserts nothing.
 *
 *   node --conditions=source --import tsx scripts/bench-rating-read.ts [calls]
 */
import { type RatingEvent, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Readiness from "@movieapp/platform/Readiness"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingEventSourceInProcess from "@movieapp/rating/adapters/RatingEventSourceInProcess"
import * as RatingRepositoryMysql from "@movieapp/rating/adapters/RatingRepositoryMysql"
import { RatingRepository } from "@movieapp/rating/ports/RatingRepository"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Duration, Effect, Layer, Logger, LogLevel } from "effect"

const CALLS = Number(process.argv[2] ?? 4000)
const MANY = 100_000

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const summary = (samples: Array<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length
  return { mean, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99) }
}
const us = (ms: number) => `${(ms * 1000).toFixed(0).padStart(6)} µs`

const program = Effect.gen(function*() {
  if (!(yield* Effect.promise(() => MariaDb.available()))) {
    return yield* Effect.dieMessage("MariaDB is needed: scripts/mariadb.sh start")
  }
  const database = yield* MariaDb.makeTestDatabase
  const server = RatingServer.layer({
    host: "127.0.0.1",
    grpcPort: 0,
    httpPort: 0,
    advertiseHost: "127.0.0.1",
    shutdownTimeout: Duration.seconds(5)
  }).pipe(
    Layer.provideMerge(
      RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations)))
    ),
    Layer.provide([
      RatingEventSourceInProcess.layer,
      DiscoveryMemory.layer(),
      Readiness.layer,
      Tokens.layerWriteAccess
    ]),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  yield* Effect.gen(function*() {
    const repository = yield* RatingRepository
    const started = Date.now()
    for (let i = 0; i < MANY; i += 1000) {
      const batch: Array<RatingEvent> = []
      for (let u = i; u < i + 1000; u++) {
        batch.push({
          eventType: "put",
          recordType: "movie",
          recordId: RecordId.make("many"),
          userId: UserId.make(`user-${u}`),
          value: RatingValue.make(1 + (u % 10))
        })
      }
      yield* repository.applyEvents(batch)
    }
    yield* repository.put({
      recordType: "movie",
      recordId: RecordId.make("one"),
      userId: UserId.make("user-0"),
      value: RatingValue.make(7)
    })
    console.log(
      `loaded ${MANY.toLocaleString("en")} ratings for "many" and 1 for "one" in ${
        ((Date.now() - started) / 1000).toFixed(1)
      } s`
    )

    const { grpc } = yield* RatingServer.Ports
    const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${grpc}`)
    const get = Grpc.method(client, "getAggregatedRating")
    const time = (recordId: string) =>
      Effect.gen(function*() {
        const start = performance.now()
        const answer = yield* Grpc.call(get, { recordId, recordType: "movie" })
        return { ms: performance.now() - start, count: answer.ratingsCount }
      })
    // Warm up both paths, then interleave so both see the same machine conditions.
    for (let i = 0; i < 200; i++) yield* time(i % 2 === 0 ? "one" : "many")
    const samples = { one: [] as Array<number>, many: [] as Array<number> }
    let counts = { one: 0, many: 0 }
    for (let i = 0; i < CALLS; i++) {
      const which = i % 2 === 0 ? "one" : "many"
      const { ms, count } = yield* time(which)
      samples[which].push(ms)
      counts = { ...counts, [which]: count }
    }
    const one = summary(samples.one)
    const many = summary(samples.many)
    console.log(`GetAggregatedRating over gRPC, ${CALLS / 2} calls each, interleaved, one client, sequential:`)
    console.log(
      `  record with ${counts.one} rating:        mean ${us(one.mean)}  p50 ${us(one.p50)}  p90 ${us(one.p90)}  p99 ${
        us(one.p99)
      }`
    )
    console.log(
      `  record with ${counts.many.toLocaleString("en")} ratings:  mean ${us(many.mean)}  p50 ${us(many.p50)}  p90 ${
        us(many.p90)
      }  p99 ${us(many.p99)}`
    )
    const ratio = many.p50 / one.p50
    console.log(
      `  p50 ratio (100,000 / 1): ${ratio.toFixed(3)}  mean ratio: ${
        (many.mean / one.mean).toFixed(3)
      }  goal: within 20% (0.8-1.2): ${ratio >= 0.8 && ratio <= 1.2 ? "met" : "NOT met"}`
    )
  }).pipe(Effect.provide(server))
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
