import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Ingest from "../src/Ingest.js"
import { eventFile, put, puts } from "./fixtures.js"
import { RecordingPublisher } from "./RecordingPublisher.js"

const bad = { userId: "bad", recordId: "1", recordType: "movie", value: 0, eventType: "put" }

const withPublisher = (options?: Parameters<typeof RecordingPublisher.layer>[0]) =>
  Effect.provide(Layer.merge(RecordingPublisher.layer(options), NodeFileSystem.layer))

describe("Ingest", () => {
  it.scoped("publishes a valid file in batches of batchSize, in file order", () =>
    Effect.gen(function*() {
      const events = puts(7)
      const file = yield* eventFile(events)
      const summary = yield* Ingest.run({ file, onInvalid: "abort", batchSize: 3, progress: false })
      const batches = yield* (yield* RecordingPublisher).batches
      assert.deepStrictEqual(batches.map((batch) => batch.length), [3, 3, 1])
      assert.deepStrictEqual(batches.flat(), events)
      assert.deepStrictEqual({ ...summary, elapsedMs: 0 }, { read: 7, published: 7, skipped: 0, elapsedMs: 0 })
    }).pipe(withPublisher()))

  it.scoped("batches default to 500 events", () =>
    Effect.gen(function*() {
      yield* Ingest.run({ file: yield* eventFile(puts(1001)) })
      const batches = yield* (yield* RecordingPublisher).batches
      assert.deepStrictEqual(batches.map((batch) => batch.length), [500, 500, 1])
    }).pipe(withPublisher()))

  it.scoped("abort publishes nothing and names every bad record", () =>
    Effect.gen(function*() {
      const [a, b, c] = puts(3)
      const file = yield* eventFile([a, bad, b, { ...bad, recordType: "book", value: 3 }, { ...bad, value: 11 }, c])
      const error = yield* Effect.flip(Ingest.run({ file, onInvalid: "abort", batchSize: 2, progress: false }))
      assert.strictEqual(error._tag, "InvalidEvents")
      assert.strictEqual(
        error.message,
        `${file}: 3 of 6 records are not valid rating events, nothing was published; ` +
          `record 1: value: must be an integer from 1 to 10; ` +
          `record 3: recordType: must be one of "movie", "tv"; ` +
          `record 4: value: must be an integer from 1 to 10`
      )
      assert.deepStrictEqual(yield* (yield* RecordingPublisher).batches, [])
    }).pipe(withPublisher()))

  it.scoped("abort is the default", () =>
    Effect.gen(function*() {
      const records = Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0 ? put(`u${i}`, "1", 5) : { ...bad, userId: `u${i}` })
      const error = yield* Effect.flip(Ingest.run({ file: yield* eventFile(records) }))
      assert.include(error.message, "15 of 30 records")
      const listed = [...error.message.matchAll(/record (\d+):/g)].map((match) =>
        Number(match[1])
      )
      assert.deepStrictEqual(listed, Array.from({ length: 15 }, (_, i) => 2 * i + 1))
      assert.notInclude(error.message, "more")
      assert.deepStrictEqual(yield* (yield* RecordingPublisher).batches, [])
    }).pipe(withPublisher()))

  it.scoped("the listing stops after MAX_LISTED records and says how many more", () =>
    Effect.gen(function*() {
      const records = Array.from({ length: Ingest.MAX_LISTED + 5 }, (_, i) => ({ ...bad, userId: `u${i}` }))
      const error = yield* Effect.flip(Ingest.run({ file: yield* eventFile(records) }))
      const listed = [...error.message.matchAll(/record (\d+):/g)].map((match) => Number(match[1]))
      assert.deepStrictEqual(listed, Array.from({ length: Ingest.MAX_LISTED }, (_, i) => i))
      assert.match(error.message, /; and 5 more$/)
    }).pipe(withPublisher()))

  it.scoped("skip publishes exactly the valid records, in order and in batches", () =>
    Effect.gen(function*() {
      const valid = puts(5)
      const file = yield* eventFile([bad, valid[0], valid[1], bad, valid[2], valid[3], "not an event", valid[4], bad])
      const summary = yield* Ingest.run({ file, onInvalid: "skip", batchSize: 2, progress: false })
      const batches = yield* (yield* RecordingPublisher).batches
      assert.deepStrictEqual(batches, [valid.slice(0, 2), valid.slice(2, 4), valid.slice(4)])
      assert.deepStrictEqual({ ...summary, elapsedMs: 0 }, { read: 9, published: 5, skipped: 4, elapsedMs: 0 })
    }).pipe(withPublisher()))

  it.scoped("skip with nothing valid publishes nothing and succeeds", () =>
    Effect.gen(function*() {
      const summary = yield* Ingest.run({
        file: yield* eventFile([bad, bad]),
        onInvalid: "skip",
        batchSize: 10,
        progress: false
      })
      assert.deepStrictEqual([summary.published, summary.skipped], [0, 2])
      assert.deepStrictEqual(yield* (yield* RecordingPublisher).batches, [])
    }).pipe(withPublisher()))

  it.scoped("a failed batch stops the run and says how much was published before it", () =>
    Effect.gen(function*() {
      const file = yield* eventFile(puts(7))
      const error = yield* Effect.flip(Ingest.run({ file, onInvalid: "abort", batchSize: 3, progress: false }))
      assert.strictEqual(error._tag, "PublishError")
      assert.strictEqual(error.message, "batch 2 refused (3 of 7 events were published before the failure)")
      assert.deepStrictEqual((yield* (yield* RecordingPublisher).batches).map((batch) => batch.length), [3])
    }).pipe(withPublisher({ failOnBatch: 2 })))

  it.scoped("a failure of the first batch keeps the publisher's message", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Ingest.run({ file: yield* eventFile(puts(2)) }))
      assert.strictEqual(error.message, "batch 1 refused")
    }).pipe(withPublisher({ failOnBatch: 1 })))

  it.scoped("an unreadable file fails before anything is published", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Ingest.run({ file: yield* eventFile("[1, 2") }))
      assert.strictEqual(error._tag, "EventFileError")
      assert.deepStrictEqual(yield* (yield* RecordingPublisher).batches, [])
    }).pipe(withPublisher()))

  it("formatSummary reports counts, time and rate", () => {
    assert.strictEqual(
      Ingest.formatSummary({ read: 10, published: 8, skipped: 2, elapsedMs: 2000 }),
      "read 10, published 8, skipped 2 in 2.00 s (4 events/s)"
    )
    assert.strictEqual(
      Ingest.formatSummary({ read: 0, published: 0, skipped: 0, elapsedMs: 0 }),
      "read 0, published 0, skipped 0 in 0.00 s"
    )
  })
})
