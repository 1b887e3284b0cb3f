/**
 * The behaviour every RatingRepository adapter must have. The layer is built once
 * per suite, so every test uses its own record ids.
 */
import { assert, layer } from "@effect/vitest"
import {
  AggregatedRating,
  type RankCursor,
  type RankedRecord,
  type RankQuery,
  type Rating,
  type RatingEvent,
  RatingValue,
  type RecordId,
  type RecordKey,
  type RecordType,
  UserId
} from "@movieapp/contracts/Rating"
import { Effect, FastCheck as fc, Layer, Option, Random, Runtime } from "effect"
import * as Ranking from "../src/domain/Ranking.js"
import type { PositionedEvent, StreamBatch } from "../src/ports/RatingEventSource.js"
import { RatingRepository } from "../src/ports/RatingRepository.js"

// Ids unchecked (not `make`): storage keeps any ids apart, whatever validation lets through.
const key = (recordId: string, recordType: RecordType = "movie"): RecordKey => ({
  recordType,
  recordId: recordId as RecordId
})
const rating = (recordId: string, userId: string, value: number, recordType: RecordType = "movie"): Rating => ({
  ...key(recordId, recordType),
  userId: userId as UserId,
  value: RatingValue.make(value)
})
const put = (r: Rating): RatingEvent => ({ eventType: "put", ...r })
const del = (recordId: string, userId: string): RatingEvent => ({
  eventType: "delete",
  ...key(recordId),
  userId: userId as UserId
})
const aggregate = (count: number, sum: number) => new AggregatedRating({ count, sum })
/** Events at consecutive positions from `first`, as a stream batch ending after the last one. */
const streamBatch = (
  stream: string,
  first: number,
  events: ReadonlyArray<RatingEvent>,
  next = first + events.length
): StreamBatch => ({
  stream,
  events: events.map((event, i): PositionedEvent => ({ position: BigInt(first + i), event })),
  next: BigInt(next)
})
const uniqueStream = (name: string) => `test/${name}/${Math.random().toString(36).slice(2)}`

/**
 * Characters ids may hold, weighted towards those a key built by joining ids
 * would confuse: separators, NUL, digits and colons (a length prefix's), astral
 * characters (two UTF-16 units). Ids are not validated here: storage must keep
 * any two of them apart, whatever validation lets through.
 */
const idUnit = fc.oneof(
  { arbitrary: fc.constantFrom("\u0000", "a", "1", ":"), weight: 8 },
  fc.constantFrom("/", "|", "\u0001", "😀", "𝄞"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
)
const idSuffix = fc.oneof(
  // Few characters, so that one id is another's start or end cut at a separator.
  fc.string({ unit: fc.constantFrom("\u0000", "a"), maxLength: 3 }),
  // Not ending with a space: MariaDB compares VARCHARs ignoring trailing spaces (one reason ids cannot end with whitespace).
  fc.string({ unit: idUnit, maxLength: 4 }).filter((s) => !s.endsWith(" "))
)

/** A few ids, and events rating records of them by users of them: collisions are likely wherever keys could collide. */
const collidingEvents = fc.uniqueArray(idSuffix, { minLength: 3, maxLength: 8 }).chain((ids) =>
  fc.array(
    fc.record({
      recordType: fc.constantFrom("movie" as const, "tv" as const),
      recordId: fc.constantFrom(...ids),
      userId: fc.constantFrom(...ids),
      value: fc.option(fc.integer({ min: 1, max: 10 }), { freq: 4 })
    }),
    { minLength: 1, maxLength: 24 }
  )
)

export const ratingRepositoryContract = (name: string, adapter: Layer.Layer<RatingRepository, unknown>) => {
  layer(adapter, { timeout: "120 seconds", excludeTestServices: true })(`RatingRepository contract: ${name}`, (it) => {
    it.effect("a record nobody rated has the empty aggregate", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        assert.deepStrictEqual(yield* repository.aggregate(key("c-none")), AggregatedRating.empty)
      }))

    it.effect("one rating per user per record: the latest value replaces the earlier", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        yield* repository.put(rating("c-replace", "user0", 5))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(1, 5))
        yield* repository.put(rating("c-replace", "user0", 1))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(1, 1))
        yield* repository.put(rating("c-replace", "user1", 10))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(2, 11))
      }))

    it.effect("records of different types with the same id are separate", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        yield* repository.put(rating("c-types", "u", 3, "movie"))
        yield* repository.put(rating("c-types", "u", 8, "tv"))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-types", "movie")), aggregate(1, 3))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-types", "tv")), aggregate(1, 8))
      }))

    it.effect("remove deletes the user's rating and says whether there was one", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        yield* repository.put(rating("c-remove", "a", 4))
        yield* repository.put(rating("c-remove", "b", 6))
        assert.isTrue(yield* repository.remove({ ...key("c-remove"), userId: UserId.make("a") }))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-remove")), aggregate(1, 6))
        assert.isFalse(yield* repository.remove({ ...key("c-remove"), userId: UserId.make("a") }))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-remove")), aggregate(1, 6))
        assert.isTrue(yield* repository.remove({ ...key("c-remove"), userId: UserId.make("b") }))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-remove")), AggregatedRating.empty)
      }))

    it.effect("applyEvents applies in order; deleting a missing rating changes nothing", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        yield* repository.applyEvents([
          put(rating("c-events", "a", 2)),
          put(rating("c-events", "a", 9)),
          del("c-events", "nobody"),
          put(rating("c-events", "b", 3)),
          del("c-events", "b"),
          put(rating("c-events", "c", 7))
        ])
        assert.deepStrictEqual(yield* repository.aggregate(key("c-events")), aggregate(2, 16))
      }))

    it.effect("after a random sequence of puts, replacements and deletes the aggregates equal a recomputation", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const records = ["c-rand-0", "c-rand-1", "c-rand-2"]
        const users = Array.from({ length: 12 }, (_, i) => `u${i}`)
        // The model: the final rating of each (record, user), computed independently.
        const model = new Map<string, number>()
        const events: Array<RatingEvent> = []
        for (let i = 0; i < 600; i++) {
          const record = records[yield* Random.nextIntBetween(0, records.length)]!
          const user = users[yield* Random.nextIntBetween(0, users.length)]!
          if ((yield* Random.nextIntBetween(0, 4)) === 0) {
            events.push(del(record, user))
            model.delete(`${record}/${user}`)
          } else {
            const value = yield* Random.nextIntBetween(1, 11)
            events.push(put(rating(record, user, value)))
            model.set(`${record}/${user}`, value)
          }
        }
        // Mixed paths: single writes and batches of different sizes.
        let i = 0
        while (i < events.length) {
          const size = yield* Random.nextIntBetween(1, 40)
          const batch = events.slice(i, i + size)
          const only = batch[0]!
          if (batch.length === 1 && only.eventType === "put") yield* repository.put(only)
          else if (batch.length === 1) yield* repository.remove(only)
          else yield* repository.applyEvents(batch)
          i += size
        }
        for (const record of records) {
          const values = [...model.entries()].filter(([k]) => k.startsWith(`${record}/`)).map(([, v]) => v)
          assert.deepStrictEqual(
            yield* repository.aggregate(key(record)),
            aggregate(values.length, values.reduce((a, b) => a + b, 0)),
            record
          )
        }
      }))

    it.effect("ids that differ only in where a separator falls are different ratings, in a batch or one by one", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        // The same characters, cut at another place between record and user.
        const first = rating("c-sep\u0000x", "y", 4)
        const second = rating("c-sep", "x\u0000y", 6)
        yield* repository.applyEvents([put(first), put(second)])
        assert.deepStrictEqual(yield* repository.aggregate(key("c-sep\u0000x")), aggregate(1, 4))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-sep")), aggregate(1, 6))
        yield* repository.put(rating("c-sep", "x\u0000y", 2))
        yield* repository.put(rating("c-sep\u0000x", "y", 9))
        yield* repository.applyStreamBatch(
          streamBatch(uniqueStream("sep"), 0, [
            put(rating("c-sep", "x\u0000y", 1)),
            put(rating("c-sep\u0000x", "y", 10))
          ])
        )
        assert.deepStrictEqual(yield* repository.aggregate(key("c-sep\u0000x")), aggregate(1, 10))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-sep")), aggregate(1, 1))
      }))

    it.effect("distinct ids stay distinct whatever they hold (separators, NUL, astral characters): aggregates equal a model keyed by the ids themselves", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const run = Runtime.runPromise(yield* Effect.runtime<never>())
        let round = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(collidingEvents, fc.constantFrom("batch", "one by one", "stream"), async (drawn, path) => {
              // Every round rates records of its own.
              const prefix = `c-keys-${round++}-`
              const events = drawn.map(({ recordId, recordType, userId, value }): RatingEvent => {
                const ratingKey = { recordType, recordId: (prefix + recordId) as RecordId, userId: userId as UserId }
                return value === null
                  ? { eventType: "delete", ...ratingKey }
                  : { eventType: "put", ...ratingKey, value: RatingValue.make(value) }
              })
              const model = new Map<string, number>()
              for (const event of events) {
                const id = JSON.stringify([event.recordType, event.recordId, event.userId])
                if (event.eventType === "put") model.set(id, event.value)
                else model.delete(id)
              }
              await run(Effect.gen(function*() {
                if (path === "batch") yield* repository.applyEvents(events)
                else if (path === "stream") {
                  yield* repository.applyStreamBatch(streamBatch(uniqueStream("keys"), 0, events))
                } else {
                  for (const event of events) {
                    if (event.eventType === "put") yield* repository.put(event)
                    else yield* repository.remove(event)
                  }
                }
                const records = new Map(
                  events.map((
                    e
                  ) => [JSON.stringify([e.recordType, e.recordId]), { recordType: e.recordType, recordId: e.recordId }])
                )
                for (const [record, recordKey] of records) {
                  const values = [...model].filter(([id]) => id.startsWith(record.slice(0, -1) + ",")).map((
                    [, value]
                  ) => value)
                  assert.deepStrictEqual(
                    yield* repository.aggregate(recordKey),
                    aggregate(values.length, values.reduce((a, b) => a + b, 0)),
                    `${JSON.stringify(recordKey)} after ${JSON.stringify(events)} (${path})`
                  )
                }
              }))
            }),
            { numRuns: 200 }
          )
        )
      }))

    it.effect("a stream batch is applied once and moves the stream's checkpoint", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const stream = uniqueStream("once")
        assert.isTrue(Option.isNone(yield* repository.checkpoint(stream)))
        const batch = streamBatch(stream, 0, [put(rating("c-stream", "a", 4)), put(rating("c-stream", "b", 6))])
        assert.deepStrictEqual(yield* repository.applyStreamBatch(batch), { applied: 2, redelivered: 0 })
        assert.deepStrictEqual(yield* repository.checkpoint(stream), Option.some(2n))
        // The same delivery again (a crash after storing, before the broker heard of it).
        assert.deepStrictEqual(yield* repository.applyStreamBatch(batch), { applied: 0, redelivered: 2 })
        assert.deepStrictEqual(yield* repository.aggregate(key("c-stream")), aggregate(2, 10))
        assert.deepStrictEqual(yield* repository.checkpoint(stream), Option.some(2n))
      }))

    it.effect("a redelivery that straddles the checkpoint applies only the events past it", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const stream = uniqueStream("straddle")
        const events = [
          put(rating("c-straddle", "a", 1)),
          put(rating("c-straddle", "b", 2)),
          put(rating("c-straddle", "a", 3)),
          del("c-straddle", "b"),
          put(rating("c-straddle", "c", 10))
        ]
        yield* repository.applyStreamBatch(streamBatch(stream, 100, events.slice(0, 3)))
        // Redelivered from an older committed offset, with different batch boundaries.
        assert.deepStrictEqual(
          yield* repository.applyStreamBatch(streamBatch(stream, 101, events.slice(1))),
          { applied: 2, redelivered: 2 }
        )
        assert.deepStrictEqual(yield* repository.aggregate(key("c-straddle")), aggregate(2, 13))
        assert.deepStrictEqual(yield* repository.checkpoint(stream), Option.some(105n))
      }))

    it.effect("positions the source dropped (invalid events) still move the checkpoint; it never moves back", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const stream = uniqueStream("gaps")
        yield* repository.applyStreamBatch(streamBatch(stream, 0, [put(rating("c-gaps", "a", 5))], 10))
        assert.deepStrictEqual(yield* repository.checkpoint(stream), Option.some(10n))
        // A stale consumer finishing an old batch after a rebalance.
        assert.deepStrictEqual(
          yield* repository.applyStreamBatch(streamBatch(stream, 0, [put(rating("c-gaps", "a", 1))], 1)),
          { applied: 0, redelivered: 1 }
        )
        assert.deepStrictEqual(yield* repository.checkpoint(stream), Option.some(10n))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-gaps")), aggregate(1, 5))
      }))

    it.effect("streams keep separate checkpoints", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const [one, two] = [uniqueStream("one"), uniqueStream("two")]
        yield* repository.applyStreamBatch(streamBatch(one, 0, [put(rating("c-streams", "a", 2))]))
        yield* repository.applyStreamBatch(streamBatch(two, 0, [put(rating("c-streams", "b", 3))]))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-streams")), aggregate(2, 5))
        assert.deepStrictEqual(yield* repository.checkpoint(two), Option.some(1n))
      }))

    it.effect("two consumers delivering the same batch at once apply it once", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const stream = uniqueStream("race")
        const events = Array.from({ length: 50 }, (_, i) => put(rating(`c-race-${i % 5}`, `u${i}`, (i % 10) + 1)))
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => repository.applyStreamBatch(streamBatch(stream, 0, events))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.reduce((n, r) => n + r.applied, 0), 50)
        for (let r = 0; r < 5; r++) {
          const values: Array<number> = events.flatMap((
            e
          ) => (e.recordId === `c-race-${r}` && e.eventType === "put" ? [e.value] : []))
          assert.deepStrictEqual(
            yield* repository.aggregate(key(`c-race-${r}`)),
            aggregate(values.length, values.reduce((a, b) => a + b, 0))
          )
        }
      }))

    it.effect("a stream batch of 20,000 events (more than one statement holds) is applied whole", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        const events = Array.from({ length: 20_000 }, (_, i) => put(rating(`c-big-${i % 7}`, `u${i}`, (i % 10) + 1)))
        assert.deepStrictEqual(
          yield* repository.applyStreamBatch(streamBatch(uniqueStream("big"), 0, events)),
          { applied: 20_000, redelivered: 0 }
        )
        for (let r = 0; r < 7; r++) {
          const values: Array<number> = events.flatMap((
            e
          ) => (e.recordId === `c-big-${r}` && e.eventType === "put" ? [e.value] : []))
          assert.deepStrictEqual(
            yield* repository.aggregate(key(`c-big-${r}`)),
            aggregate(values.length, values.reduce((a, b) => a + b, 0))
          )
        }
      }))

    it.effect("aggregates answers every id in the order asked, the empty aggregate for unrated ones", () =>
      Effect.gen(function*() {
        const repository = yield* RatingRepository
        yield* repository.applyEvents([
          put(rating("c-many-1", "u1", 4)),
          put(rating("c-many-1", "u2", 8)),
          put(rating("c-many-2", "u1", 10)),
          put(rating("c-many-3", "u1", 1, "tv")),
          put(rating("c-many-4", "u1", 3)),
          del("c-many-4", "u1")
        ])
        const ids = ["c-many-2", "c-many-unknown", "c-many-1", "c-many-3", "c-many-2", "c-many-4"] as Array<RecordId>
        assert.deepStrictEqual(yield* repository.aggregates({ recordType: "movie", recordIds: ids }), [
          aggregate(1, 10),
          AggregatedRating.empty,
          aggregate(2, 12),
          AggregatedRating.empty, // rated as a tv record only
          aggregate(1, 10),
          AggregatedRating.empty // its only rating was removed
        ])
        assert.deepStrictEqual(yield* repository.aggregates({ recordType: "movie", recordIds: [] }), [])
      }))
  })

  /** Ranking tests each get a repository of their own: a ranking covers every record of a type. */
  const fresh = <A, E>(effect: Effect.Effect<A, E, RatingRepository>, prior?: Ranking.Prior) =>
    effect.pipe(
      Effect.provide(prior === undefined ? adapter : adapter.pipe(Layer.provide(Ranking.RankingPrior.layer(prior))))
    )
  const ranked = (query: Omit<RankQuery, "recordType"> & { readonly recordType?: RecordType }) =>
    Effect.flatMap(RatingRepository, (repository) => repository.ranked({ recordType: "movie", ...query }))
  /** Every record of the ranking, `size` at a time, each page after the last one's cursor. */
  const allPages = (size: number, minCount: number) =>
    Effect.gen(function*() {
      const all: Array<RankedRecord> = []
      let after: RankCursor | undefined
      for (;;) {
        const page = yield* ranked({ limit: size, minCount, ...(after ? { after } : {}) })
        all.push(...page)
        if (page.length < size) return all
        after = { score: page.at(-1)!.score, recordId: page.at(-1)!.recordId }
      }
    })
  const ratedBy = (recordId: string, values: ReadonlyArray<number>) =>
    values.map((value, i) => put(rating(recordId, `u${i}`, value)))

  layer(Layer.empty, { timeout: "120 seconds", excludeTestServices: true })(
    `RatingRepository ranking contract: ${name}`,
    (it) => {
      it.effect("ranks by damped mean: one 10 does not beat many 9s; the score is (C·m + sum) / (C + count)", () =>
        fresh(Effect.gen(function*() {
          const repository = yield* RatingRepository
          yield* repository.applyEvents([
            ...ratedBy("one-ten", [10]),
            ...ratedBy("many-nines", Array.from({ length: 200 }, () => 9)),
            ...ratedBy("some-eights", Array.from({ length: 30 }, () => 8)),
            ...ratedBy("few-fives", [5, 5]),
            ...ratedBy("a-tv-show", [10, 10, 10]).map((e) => ({ ...e, recordType: "tv" as const }))
          ])
          const top = yield* ranked({ limit: 10, minCount: 1 })
          assert.deepStrictEqual(top.map((r) => r.recordId), ["many-nines", "some-eights", "one-ten", "few-fives"])
          const prior = Ranking.DEFAULT_PRIOR
          for (const record of top) {
            assert.strictEqual(record.score, Ranking.dampedMean(prior, record.rating.count, record.rating.sum))
          }
          assert.deepStrictEqual(top[0]!.rating, aggregate(200, 1800))
          assert.deepStrictEqual((yield* ranked({ recordType: "tv", limit: 10, minCount: 1 })).map((r) => r.recordId), [
            "a-tv-show"
          ])
        })))

      it.effect("a minimum count leaves out records with fewer ratings; removed ratings leave the ranking", () =>
        fresh(Effect.gen(function*() {
          const repository = yield* RatingRepository
          yield* repository.applyEvents([
            ...ratedBy("r-1", [10]),
            ...ratedBy("r-3", [2, 3, 4]),
            ...ratedBy("r-5", [8, 8, 8, 8, 8]),
            ...ratedBy("r-gone", [7, 7, 7])
          ])
          yield* repository.applyEvents([del("r-gone", "u0"), del("r-gone", "u1"), del("r-gone", "u2")])
          assert.deepStrictEqual((yield* ranked({ limit: 10, minCount: 1 })).map((r) => r.recordId), [
            "r-5",
            "r-1",
            "r-3"
          ])
          assert.deepStrictEqual((yield* ranked({ limit: 10, minCount: 3 })).map((r) => r.recordId), ["r-5", "r-3"])
          assert.deepStrictEqual((yield* ranked({ limit: 10, minCount: 6 })).map((r) => r.recordId), [])
          assert.deepStrictEqual((yield* ranked({ limit: 1, minCount: 2 })).map((r) => r.recordId), ["r-5"])
        })))

      it.effect("pages after a cursor list the ranking once, in order, equal scores by id descending", () =>
        fresh(Effect.gen(function*() {
          const repository = yield* RatingRepository
          const events: Array<RatingEvent> = []
          for (let r = 0; r < 40; r++) {
            // Several records share each score: ties are broken by id.
            events.push(
              ...ratedBy(`p-${r}`, Array.from({ length: (r % 4) + 1 }, (_, i) => ((r + i) % 3) + 1 + (r % 2) * 7))
            )
          }
          events.push(...ratedBy("p-\uE000", [9, 9]), ...ratedBy("p-😀", [9, 9]))
          yield* repository.applyEvents(events)
          const whole = yield* ranked({ limit: 1000, minCount: 1 })
          assert.lengthOf(whole, 42)
          const expected = [...whole].sort(Ranking.order)
          assert.deepStrictEqual(whole, expected)
          // Code point order: the astral id is the greater, so it comes first among equals.
          const astral = whole.findIndex((r) => r.recordId === "p-😀")
          assert.strictEqual(whole[astral + 1]!.recordId, "p-\uE000")
          for (const size of [1, 3, 7]) assert.deepStrictEqual(yield* allPages(size, 1), whole, `pages of ${size}`)
          const atLeastTwo = whole.filter((r) => r.rating.count >= 2)
          assert.deepStrictEqual(yield* allPages(4, 2), atLeastTwo)
        })))

      it.effect("scores follow the prior the repository was built with", () =>
        fresh(
          Effect.gen(function*() {
            const repository = yield* RatingRepository
            yield* repository.applyEvents([...ratedBy("one-ten", [10]), ...ratedBy("five-sevens", [7, 7, 7, 7, 7])])
            const top = yield* ranked({ limit: 10, minCount: 1 })
            // A light prior trusts a single rating: (0.5·1 + 10) / 1.5 = 7 beats (0.5·1 + 35) / 5.5 (the
            // default prior ranks them the other way: (55 + 10) / 11 < (55 + 35) / 15).
            assert.deepStrictEqual(top.map((r) => [r.recordId, r.score]), [["one-ten", 7], ["five-sevens", 35.5 / 5.5]])
          }),
          { weight: 0.5, mean: 1 }
        ))
    }
  )
}
