import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { AggregatedRating, type RatingEvent, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Logs from "@movieapp/testkit/Logs"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import { Deferred, Effect, Fiber, Layer, Option, Random } from "effect"
import * as RatingStatements from "../src/adapters/internal/RatingStatements.js"
import * as RatingRepositoryMysql from "../src/adapters/RatingRepositoryMysql.js"
import * as ChangeSet from "../src/domain/ChangeSet.js"
import * as Ranking from "../src/domain/Ranking.js"
import { RatingRepository } from "../src/ports/RatingRepository.js"
import { ratingRepositoryContract } from "./RatingRepositoryContract.js"

/**
 * The repository on a fresh database, using what the server can do, or as on a
 * server without INSERT .. RETURNING (MySQL): its other way to tell new ratings
 * from existing ones runs on MariaDB too.
 */
const mysqlRepository = (returning: "as the server allows" | "without RETURNING") =>
  Layer.unwrapEffect(
    Effect.map(MariaDb.TestDatabase, (database) =>
      RatingRepositoryMysql.layer.pipe(
        Layer.provide(
          returning === "without RETURNING"
            ? Layer.effect(
              Mysql.MysqlServer,
              Effect.map(Mysql.MysqlServer, (server) => ({ ...server, returning: false }))
            )
            : Layer.empty
        ),
        Layer.provideMerge(Mysql.layer(database, RatingRepositoryMysql.migrations))
      ))
  ).pipe(Layer.provide(MariaDb.layerTestDatabase))

const randomEvents = (records: ReadonlyArray<string>, users: number, count: number) =>
  Effect.forEach(Array.from({ length: count }), () =>
    Effect.gen(function*() {
      const key = {
        recordType: (yield* Random.nextBoolean) ? "movie" as const : "tv" as const,
        recordId: RecordId.make(records[yield* Random.nextIntBetween(0, records.length)]!),
        userId: UserId.make(`u${yield* Random.nextIntBetween(0, users)}`)
      }
      return (yield* Random.nextIntBetween(0, 4)) === 0
        ? { eventType: "delete", ...key } satisfies RatingEvent
        : {
          eventType: "put",
          ...key,
          value: RatingValue.make(yield* Random.nextIntBetween(1, 11))
        } satisfies RatingEvent
    }))

describe("statements of a batch", () => {
  it("are cut to sizes from a fixed set (512 and powers of two), in order, covering every row once", () => {
    const sizes = new Set<number>()
    for (const rows of [1, 3, 511, 512, 513, 1000, 6_700, 20_000]) {
      const chunks = RatingStatements.statementChunks(Array.from({ length: rows }, (_, i) => i))
      assert.deepStrictEqual(chunks.flat(), Array.from({ length: rows }, (_, i) => i))
      for (const chunk of chunks) sizes.add(chunk.length)
    }
    // However batch sizes vary, a connection prepares each statement in at most ten sizes.
    for (const size of sizes) assert.include([512, 256, 128, 64, 32, 16, 8, 4, 2, 1], size)
  })
})

describe("new ratings told from existing ones by INSERT .. RETURNING", () => {
  const events: Array<RatingEvent> = ["a", "b", "c", "d"].map((userId) => ({
    eventType: "put",
    recordType: "movie",
    recordId: RecordId.make("r"),
    userId: UserId.make(userId),
    value: RatingValue.make(5)
  }))
  const returned = (userIds: ReadonlyArray<string>) => userIds.map((userId) => ["movie", "r", userId])
  const marked = (userIds: ReadonlyArray<string>) => {
    const changes = [...ChangeSet.finalChanges(events).values()]
    RatingStatements.markInserted(
      changes,
      returned(userIds),
      (row) => changes.find((change) => change.key.userId === row[2])!
    )
    return changes.filter((change) => change.applied).map((change) => change.key.userId)
  }

  it("marks the rows returned in the order inserted", () => {
    assert.deepStrictEqual(marked(["a", "c", "d"]), ["a", "c", "d"])
    assert.deepStrictEqual(marked([]), [])
  })

  it("marks the rows returned in any other order too", () => {
    assert.deepStrictEqual(marked(["c", "a"]), ["a", "c"])
    assert.deepStrictEqual(marked(["d", "c", "b", "a"]), ["a", "b", "c", "d"])
  })
})

describe.runIf(await MariaDb.available())("MariaDB", () => {
  it.effect("is known to support INSERT .. RETURNING, so the tests below take that way", () =>
    Effect.gen(function*() {
      const server = yield* Mysql.MysqlServer
      assert.match(server.version, /MariaDB/)
      assert.isTrue(server.returning)
    }).pipe(
      Effect.provide(
        Layer.unwrapEffect(
          Effect.map(MariaDb.TestDatabase, (database) => Mysql.layer(database, RatingRepositoryMysql.migrations))
        )
      ),
      Effect.provide(MariaDb.layerTestDatabase)
    ))

  for (const returning of ["as the server allows", "without RETURNING"] as const) {
    const MysqlRepository = mysqlRepository(returning)
    ratingRepositoryContract(`mysql, ${returning}`, MysqlRepository)

    layer(MysqlRepository, { timeout: "120 seconds", excludeTestServices: true })(
      `RatingRepository (mysql, ${returning}) consistency`,
      (it) => {
        it.effect("aggregates equal an independent SQL computation over the ratings table, with concurrent overlapping batches", () =>
          Effect.gen(function*() {
            const repository = yield* RatingRepository
            const sql = yield* SqlClient.SqlClient
            const records = ["x-0", "x-1", "x-2", "x-3"]
            // Eight writers at once over the same few records and users: lock conflicts and deadlocks happen for real.
            yield* Effect.forEach(Array.from({ length: 8 }), () =>
              Effect.gen(function*() {
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
            const stored = yield* sql<
              { recordType: string; recordId: string; ratingsCount: number; ratingsSum: number }
            >`
            SELECT record_type, record_id, ratings_count, ratings_sum
            FROM rating_aggregates WHERE ratings_count > 0 ORDER BY record_type, record_id`
            assert.isAbove(expected.length, 0)
            assert.deepStrictEqual(
              stored.map((r) => [r.recordType, r.recordId, Number(r.ratingsCount), Number(r.ratingsSum)]),
              expected.map((r) => [r.recordType, r.recordId, Number(r.n), Number(r.total)])
            )
            for (const row of expected) {
              const aggregate = yield* repository.aggregate({
                recordType: row.recordType as "movie" | "tv",
                recordId: RecordId.make(row.recordId)
              })
              assert.deepStrictEqual([aggregate.count, aggregate.sum], [Number(row.n), Number(row.total)])
            }
          }))

        it.effect("removing one rating does not wait for a lock another transaction holds on a different rating", () =>
          Effect.gen(function*() {
            const repository = yield* RatingRepository
            const sql = yield* SqlClient.SqlClient
            const ratingOf = (userId: string) => ({
              recordType: "movie" as const,
              recordId: RecordId.make("lock-0"),
              userId: UserId.make(userId)
            })
            yield* repository.put({ ...ratingOf("u1"), value: RatingValue.make(3) })
            yield* repository.put({ ...ratingOf("u2"), value: RatingValue.make(4) })
            const locked = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const holder =
              yield* sql`SELECT value FROM ratings WHERE record_type = 'movie' AND record_id = 'lock-0' AND user_id = 'u1' FOR UPDATE`
                .pipe(
                  Effect.zipRight(Deferred.succeed(locked, undefined)),
                  Effect.zipRight(Deferred.await(release)),
                  sql.withTransaction,
                  Effect.fork
                )
            yield* Deferred.await(locked)
            // Bounded only so that a regression fails instead of hanging until InnoDB's lock wait timeout.
            const removed = yield* repository.remove(ratingOf("u2")).pipe(
              Effect.disconnect, // a statement in flight cannot be cut short
              Effect.timeoutFail({
                duration: "20 seconds",
                onTimeout: () => new Error("remove waited for the other transaction's lock")
              }),
              Effect.ensuring(Deferred.succeed(release, undefined))
            )
            yield* Fiber.join(holder)
            assert.isTrue(removed)
            assert.deepStrictEqual(
              yield* repository.aggregate({ recordType: "movie", recordId: RecordId.make("lock-0") }),
              new AggregatedRating({ count: 1, sum: 3 })
            )
          }))

        it.effect("a value the database cannot hold as sent is refused (StorageRefused), and nothing of the write is applied", () => {
          const logs = Logs.make()
          return Effect.gen(function*() {
            const repository = yield* RatingRepository
            // MariaDB: INSERT IGNORE .. RETURNING unless the test turned it off.
            const insertIgnore = returning === "as the server allows"
            const valid: RatingEvent = {
              eventType: "put",
              recordType: "movie",
              recordId: RecordId.make("refuse-0"),
              userId: UserId.make("u"),
              value: RatingValue.make(5)
            }
            // Built past validation, as a bug (or validation and schema drifting apart) would.
            const tooLong: RatingEvent = { ...valid, recordId: "x".repeat(200) as RecordId }
            const outOfRange: RatingEvent = { ...valid, userId: UserId.make("v"), value: 11 as RatingValue }
            const loneSurrogate: RatingEvent = { ...valid, userId: "\ud800" as UserId }

            const refusals = [
              // INSERT IGNORE truncates instead of failing; RETURNING shows what it stored.
              [
                tooLong,
                insertIgnore ? "it stored an id other than the one sent" : "a string is longer than its column"
              ],
              [outOfRange, "a value breaks a CHECK constraint"],
              // Stored as U+FFFD, which INSERT .. RETURNING shows (without it, nothing tells).
              ...(insertIgnore ? [[loneSurrogate, "it stored an id other than the one sent"] as const] : [])
            ] as const
            for (const [event, reason] of refusals) {
              const batch = yield* Effect.flip(repository.applyEvents([valid, event]))
              assert.strictEqual(batch._tag, "StorageRefused")
              assert.include(batch.message, reason)
              const stream = `test/refused/${Math.random().toString(36).slice(2)}`
              const streamed = yield* Effect.flip(
                repository.applyStreamBatch({
                  stream,
                  events: [{ position: 0n, event: valid }, { position: 1n, event }],
                  next: 2n
                })
              )
              assert.strictEqual(streamed._tag, "StorageRefused")
              assert.isTrue(Option.isNone(yield* repository.checkpoint(stream)), "the checkpoint did not move")
              if (event.eventType === "put") {
                assert.strictEqual((yield* Effect.flip(repository.put(event)))._tag, "StorageRefused")
              }
            }
            assert.deepStrictEqual(
              yield* repository.aggregate({ recordType: "movie", recordId: RecordId.make("refuse-0") }),
              AggregatedRating.empty
            )
            // Each refusal is logged for operators with the server's own words (kept here rather than printed).
            assert.lengthOf(
              logs.at("WARN").filter((line) => line.message === "the database refused rating events"),
              refusals.length * 3
            )
          }).pipe(Effect.provide(logs.layer))
        })

        it.effect("writers racing to give the same users their first ratings count each rating once", () =>
          Effect.gen(function*() {
            const repository = yield* RatingRepository
            const sql = yield* SqlClient.SqlClient
            const records = ["first-0", "first-1", "first-2", "first-3"].map((id) => RecordId.make(id))
            // Every writer finds the same keys absent; all but one lose the race to insert each.
            yield* Effect.forEach(
              Array.from({ length: 8 }, (_, writer) => writer),
              (writer) =>
                repository.applyEvents(
                  records.flatMap((recordId) =>
                    Array.from({ length: 10 }, (_, user): RatingEvent => ({
                      eventType: "put",
                      recordType: "movie",
                      recordId,
                      userId: UserId.make(`u${user}`),
                      value: RatingValue.make(((writer + user) % 10) + 1)
                    }))
                  )
                ),
              { concurrency: "unbounded", discard: true }
            )
            for (const recordId of records) {
              const [row] = yield* sql<{ n: number; total: number }>`
              SELECT COUNT(*) AS n, CAST(SUM(value) AS SIGNED) AS total FROM ratings WHERE record_type = 'movie' AND record_id = ${recordId}`
              const aggregate = yield* repository.aggregate({ recordType: "movie", recordId })
              assert.deepStrictEqual([aggregate.count, aggregate.sum], [10, Number(row!.total)], recordId)
              assert.strictEqual(Number(row!.n), 10)
            }
          }))
      }
    )
  }

  describe("ranking", () => {
    const onDatabase = (database: Mysql.MysqlConfig, prior: Ranking.Prior) =>
      RatingRepositoryMysql.layer.pipe(
        Layer.provide(Ranking.RankingPrior.layer(prior)),
        Layer.provideMerge(Mysql.layer(database, RatingRepositoryMysql.migrations))
      )
    const events = (recordId: string, values: ReadonlyArray<number>): Array<RatingEvent> =>
      values.map((value, i) => ({
        eventType: "put",
        recordType: "movie",
        recordId: RecordId.make(recordId),
        userId: UserId.make(`u${i}`),
        value: RatingValue.make(value)
      }))
    const top = Effect.flatMap(
      RatingRepository,
      (repository) => repository.ranked({ recordType: "movie", minCount: 1, limit: 10 })
    )

    it.scoped("a service started with another prior rescores the stored aggregates, and says so", () => {
      const logs = Logs.make()
      return Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        yield* Effect.gen(function*() {
          const repository = yield* RatingRepository
          yield* repository.applyEvents([...events("one-ten", [10]), ...events("five-sevens", [7, 7, 7, 7, 7])])
          assert.deepStrictEqual((yield* top).map((r) => r.recordId), ["five-sevens", "one-ten"])
        }).pipe(Effect.provide(onDatabase(database, Ranking.DEFAULT_PRIOR)))
        assert.lengthOf(logs.at("INFO").filter((l) => l.message === "ranking rescored for a new prior"), 0)

        const light = { weight: 0.5, mean: 1 }
        const rescored = yield* top.pipe(Effect.provide(onDatabase(database, light)))
        assert.deepStrictEqual(rescored.map((r) => [r.recordId, r.score]), [["one-ten", 7], [
          "five-sevens",
          35.5 / 5.5
        ]])
        assert.lengthOf(logs.at("INFO").filter((l) => l.message === "ranking rescored for a new prior"), 1)
        // Started again with the same prior: nothing to rescore.
        yield* top.pipe(Effect.provide(onDatabase(database, light)))
        assert.lengthOf(logs.at("INFO").filter((l) => l.message === "ranking rescored for a new prior"), 1)
      }).pipe(Effect.provide(logs.layer))
    }, 60_000)

    it.scoped(
      "the top of the ranking, with a minimum count and after a cursor, reads the ranking index without sorting",
      () =>
        Effect.gen(function*() {
          const database = yield* MariaDb.makeTestDatabase
          const sql = yield* SqlClient.SqlClient.pipe(
            Effect.provide(Layer.fresh(onDatabase(database, Ranking.DEFAULT_PRIOR)).pipe(Layer.extendScope))
          )
          // Enough rows that the optimizer would rather scan than use a useless index.
          yield* sql.unsafe(
            `INSERT INTO rating_aggregates (record_type, record_id, ratings_count, ratings_sum) VALUES ${
              Array.from({ length: 2000 }, (_, i) => `('movie', 'm${i}', ${i % 50}, ${(i % 50) * ((i % 10) + 1)})`)
                .join(", ")
            }`
          )
          yield* sql`ANALYZE TABLE rating_aggregates`
          // The adapter's own statements, as it sends them.
          for (
            const after of [undefined, { score: 7.5, recordId: RecordId.make("m77") }]
          ) {
            const [text, params] = RatingRepositoryMysql.rankedStatement(sql, {
              recordType: "movie",
              minCount: 20,
              limit: 21,
              after
            }).compile()
            const query = `${text} ${JSON.stringify(params)}`
            const plan = yield* sql.unsafe<{ key: string | null; Extra: string }>(`EXPLAIN ${text}`, params)
            assert.lengthOf(plan, 1)
            assert.strictEqual(plan[0]!.key, "rating_aggregates_ranking", query)
            assert.notInclude(plan[0]!.Extra, "filesort", query)
            assert.include(plan[0]!.Extra, "Using index", query) // covering: no row read
          }
        }),
      60_000
    )
  })
})
