import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { type RatingEvent, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as Mysql from "@movieapp/platform/Mysql"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import { Effect, Layer, Random } from "effect"
import * as RatingRepositoryMysql from "../src/adapters/RatingRepositoryMysql.js"
import { RatingRepository } from "../src/ports/RatingRepository.js"
import { ratingRepositoryContract } from "./RatingRepositoryContract.js"

const MysqlRepository = Layer.unwrapEffect(
  Effect.map(MariaDb.TestDatabase, (database) =>
    RatingRepositoryMysql.layer.pipe(Layer.provideMerge(Mysql.layer(database, RatingRepositoryMysql.migrations))))
).pipe(Layer.provide(MariaDb.layerTestDatabase))

const randomEvents = (records: ReadonlyArray<string>, users: number, count: number) =>
  Effect.forEach(Array.from({ length: count }), () =>
    Effect.gen(function* () {
      const key = {
        recordType: (yield* Random.nextBoolean) ? "movie" as const : "tv" as const,
        recordId: RecordId.make(records[yield* Random.nextIntBetween(0, records.length)]!),
        userId: UserId.make(`u${yield* Random.nextIntBetween(0, users)}`)
      }
      return (yield* Random.nextIntBetween(0, 4)) === 0
        ? { eventType: "delete", ...key } satisfies RatingEvent
        : { eventType: "put", ...key, value: RatingValue.make(yield* Random.nextIntBetween(1, 11)) } satisfies RatingEvent
    }))

describe.runIf(await MariaDb.available())("MariaDB", () => {
  ratingRepositoryContract("mysql", MysqlRepository)

  layer(MysqlRepository, { timeout: "120 seconds", excludeTestServices: true })("RatingRepository (mysql) consistency", (it) => {
    it.effect("aggregates equal an independent SQL computation over the ratings table, with concurrent overlapping batches", () =>
      Effect.gen(function* () {
        const repository = yield* RatingRepository
        const sql = yield* SqlClient.SqlClient
        const records = ["x-0", "x-1", "x-2", "x-3"]
        // Eight writers at once over the same few records and users: lock conflicts and deadlocks happen for real.
        yield* Effect.forEach(Array.from({ length: 8 }), () =>
          Effect.gen(function* () {
            for (let round = 0; round < 15; round++) {
              const events = yield* randomEvents(records, 20, yield* Random.nextIntBetween(1, 60))
              const only = events[0]!
              if (events.length === 1 && only.eventType === "put") yield* repository.put(only)
              else if (events.length === 1) yield* repository.remove(only)
              else yield* repository.applyEvents(events)
            }
          }), { concurrency: "unbounded", discard: true })

        const expected = yield* sql<{ recordType: string; recordId: string; n: number; total: number }>`
          SELECT record_type, record_id, COUNT(*) AS n, CAST(SUM(value) AS SIGNED) AS total
          FROM ratings GROUP BY record_type, record_id ORDER BY record_type, record_id`
        const stored = yield* sql<{ recordType: string; recordId: string; ratingsCount: number; ratingsSum: number }>`
          SELECT record_type, record_id, ratings_count, ratings_sum
          FROM rating_aggregates WHERE ratings_count > 0 ORDER BY record_type, record_id`
        assert.isAbove(expected.length, 0)
        assert.deepStrictEqual(
          stored.map((r) => [r.recordType, r.recordId, Number(r.ratingsCount), Number(r.ratingsSum)]),
          expected.map((r) => [r.recordType, r.recordId, Number(r.n), Number(r.total)])
        )
        for (const row of expected) {
          const aggregate = yield* repository.aggregate({ recordType: row.recordType as "movie" | "tv", recordId: RecordId.make(row.recordId) })
          assert.deepStrictEqual([aggregate.count, aggregate.sum], [Number(row.n), Number(row.total)])
        }
      }))
  })
})
