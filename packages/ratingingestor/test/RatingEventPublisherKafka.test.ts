/** The Kafka adapter against the real broker (scripts/kafka.sh). */
import { assert, describe, it } from "@effect/vitest"
import { RatingEvent } from "@movieapp/contracts/Rating"
import * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as Logs from "@movieapp/testkit/Logs"
import { Cause, Effect, Exit, Layer, Schema } from "effect"
import * as RatingEventPublisherKafka from "../src/adapters/RatingEventPublisherKafka.js"
import * as Ingest from "../src/Ingest.js"
import { RatingEventPublisher } from "../src/ports/RatingEventPublisher.js"
import * as Synthetic from "../src/Synthetic.js"
import { put, remove } from "./fixtures.js"

const kafkaUp = await TestKafka.available()

describe.skipIf(!kafkaUp)("RatingEventPublisherKafka (real broker)", () => {
  it.live(
    "keys every message by its record and keeps one record's events in order, in the original JSON shape",
    () =>
      Effect.gen(function*() {
        const topic = TestKafka.unique("publish")
        yield* TestKafka.createTopic(topic, 3)
        const events = [put("a", "r1", 3), put("a", "r2", 4), remove("a", "r1"), put("b", "r1", 9), put("c", "r3", 1)]
        yield* Effect.flatMap(RatingEventPublisher, (publisher) => publisher.publish(events)).pipe(
          Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) }))
        )
        const messages = yield* TestKafka.readAll(topic)
        assert.strictEqual(messages.length, events.length)
        for (const message of messages) {
          const event = Schema.decodeUnknownSync(RatingEvent)(JSON.parse(message.value!))
          assert.strictEqual(message.key, `${event.recordType}/${event.recordId}`)
        }
        // Same key, same partition: r1's events arrive in the order they were published.
        const r1 = messages.filter((m) => m.key === "movie/r1")
        assert.strictEqual(new Set(r1.map((m) => m.partition)).size, 1)
        assert.deepStrictEqual(r1.map((m) => JSON.parse(m.value!)), [
          { eventType: "put", userId: "a", recordId: "r1", recordType: "movie", value: 3 },
          { eventType: "delete", userId: "a", recordId: "r1", recordType: "movie" },
          { eventType: "put", userId: "b", recordId: "r1", recordType: "movie", value: 9 }
        ])
      }),
    { timeout: 60_000 }
  )

  it.live("generated events are published in batches and all arrive", () =>
    Effect.gen(function*() {
      const logs = Logs.make()
      const topic = TestKafka.unique("generated")
      yield* TestKafka.createTopic(topic, 3)
      const summary = yield* Ingest.runGenerated({ count: 2_500, seed: 7, batchSize: 1_000 }).pipe(
        Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) })),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(logs.at("INFO").map((line) => line.message), [
        "publishing synthetic rating events",
        "published synthetic rating events"
      ])
      assert.strictEqual(summary.published, 2_500)
      const ends = yield* TestKafka.endOffsets(topic)
      assert.strictEqual([...ends.values()].reduce((n, end) => n + end, 0n), 2_500n)
    }), { timeout: 60_000 })

  it.live("no reachable broker: a clear error naming the brokers and the reason", () => {
    const logs = Logs.make()
    return Effect.gen(function*() {
      const exit = yield* Layer.build(
        RatingEventPublisherKafka.layer({ kafka: KafkaSettings.defaults(["127.0.0.1:1"], "test") })
      ).pipe(
        Effect.scoped,
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      const message = Exit.isFailure(exit)
        ? Cause.squash(exit.cause) instanceof Error ? (Cause.squash(exit.cause) as Error).message : ""
        : ""
      assert.include(message, "cannot publish to Kafka topic ratings")
      assert.include(message, "127.0.0.1:1")
      assert.include(message, "ECONNREFUSED")
      // kafkajs logged each try, kept here rather than printed.
      assert.isTrue(
        logs.at("ERROR").some((line) =>
          line.annotations.component === "kafkajs" && line.message.includes("ECONNREFUSED 127.0.0.1:1")
        )
      )
    }).pipe(Effect.provide(logs.layer))
  }, { timeout: 60_000 })
})

describe("Synthetic events", () => {
  it("the same seed gives the same events; other seeds differ", () => {
    const first = [...Synthetic.generate({ count: 1000, seed: 3 })]
    assert.deepStrictEqual([...Synthetic.generate({ count: 1000, seed: 3 })], first)
    assert.notDeepEqual([...Synthetic.generate({ count: 1000, seed: 4 })], first)
    for (const event of first) Schema.decodeUnknownSync(RatingEvent)(event)
    const deletes = first.filter((e) => e.eventType === "delete").length
    assert.isAbove(deletes, 50)
    assert.isBelow(deletes, 150)
  })
})
