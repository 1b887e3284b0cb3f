/**
 * The behaviour every RatingRepository adapter must have. The layer is built once
 * per suite, so every test uses its own record ids.
 */
import { assert, layer } from "@effect/vitest"
import { AggregatedRating, type Rating, type RatingEvent, RatingValue, RecordId, type RecordKey, type RecordType, UserId } from "@movieapp/contracts/Rating"
import { Effect, type Layer, Random } from "effect"
import { RatingRepository } from "../src/ports/RatingRepository.js"

const key = (recordId: string, recordType: RecordType = "movie"): RecordKey => ({ recordType, recordId: RecordId.make(recordId) })
const rating = (recordId: string, userId: string, value: number, recordType: RecordType = "movie"): Rating => ({
  ...key(recordId, recordType),
  userId: UserId.make(userId),
  value: RatingValue.make(value)
})
const put = (r: Rating): RatingEvent => ({ eventType: "put", ...r })
const del = (recordId: string, userId: string): RatingEvent => ({ eventType: "delete", ...key(recordId), userId: UserId.make(userId) })
const aggregate = (count: number, sum: number) => new AggregatedRating({ count, sum })

export const ratingRepositoryContract = (name: string, adapter: Layer.Layer<RatingRepository, unknown>) =>
  layer(adapter, { timeout: "120 seconds", excludeTestServices: true })(`RatingRepository contract: ${name}`, (it) => {
    it.effect("a record nobody rated has the empty aggregate", () =>
      Effect.gen(function* () {
        const repository = yield* RatingRepository
        assert.deepStrictEqual(yield* repository.aggregate(key("c-none")), AggregatedRating.empty)
      }))

    it.effect("one rating per user per record: the latest value replaces the earlier", () =>
      Effect.gen(function* () {
        const repository = yield* RatingRepository
        yield* repository.put(rating("c-replace", "user0", 5))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(1, 5))
        yield* repository.put(rating("c-replace", "user0", 1))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(1, 1))
        yield* repository.put(rating("c-replace", "user1", 10))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-replace")), aggregate(2, 11))
      }))

    it.effect("records of different types with the same id are separate", () =>
      Effect.gen(function* () {
        const repository = yield* RatingRepository
        yield* repository.put(rating("c-types", "u", 3, "movie"))
        yield* repository.put(rating("c-types", "u", 8, "tv"))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-types", "movie")), aggregate(1, 3))
        assert.deepStrictEqual(yield* repository.aggregate(key("c-types", "tv")), aggregate(1, 8))
      }))

    it.effect("remove deletes the user's rating and says whether there was one", () =>
      Effect.gen(function* () {
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
      Effect.gen(function* () {
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
      Effect.gen(function* () {
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
  })
