/**
 * The in-process event transport with the ingester: a submitted batch is stored
 * before submit returns, storage outages are retried without losing the batch,
 * and a stopping service answers submitters instead of leaving them hanging.
 */
import { assert, describe, it } from "@effect/vitest"
import { InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { AggregatedRating, type RatingEvent, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as Logs from "@movieapp/testkit/Logs"
import { Context, Effect, Exit, Fiber, Layer, Ref, Scope } from "effect"
import * as RatingEventSourceInProcess from "../src/adapters/RatingEventSourceInProcess.js"
import * as RatingRepositoryMemory from "../src/adapters/RatingRepositoryMemory.js"
import * as Ingester from "../src/Ingester.js"
import { RatingEventInbox } from "../src/ports/RatingEventInbox.js"
import { RatingRepository, StorageRefused } from "../src/ports/RatingRepository.js"

const movie = RecordId.make("m1")
const event = (userId: string, value: number): RatingEvent => ({
  eventType: "put",
  recordType: "movie",
  recordId: movie,
  userId: UserId.make(userId),
  value: value as RatingEvent["value"] & number
} as RatingEvent)

/** The memory repository, failing its next `failures` batches as unavailable. */
const FlakyRepository = (failures: number) =>
  Layer.effect(
    RatingRepository,
    Effect.gen(function*() {
      const memory = yield* RatingRepositoryMemory.make
      const left = yield* Ref.make(failures)
      return RatingRepository.of({
        ...memory,
        applyEvents: (events) =>
          Ref.modify(left, (n) => [n > 0, Math.max(0, n - 1)] as const).pipe(
            Effect.flatMap((fail) =>
              fail
                ? Effect.fail(new ServiceUnavailable({ service: "storage", reason: "injected" }))
                : memory.applyEvents(events)
            )
          )
      })
    })
  )

/** The memory repository, refusing (StorageRefused) every write holding an event of user `refused`. */
const RefusingRepository = Layer.effect(
  RatingRepository,
  Effect.map(RatingRepositoryMemory.make, (memory) =>
    RatingRepository.of({
      ...memory,
      applyEvents: (events) =>
        events.some((e) => e.userId === "refused")
          ? Effect.fail(new StorageRefused({ reason: "a string is not text its column can hold (injected)" }))
          : memory.applyEvents(events)
    }))
)

const Ingestion = (repository: Layer.Layer<RatingRepository>) =>
  Ingester.layer.pipe(Layer.provideMerge(Layer.merge(RatingEventSourceInProcess.layer, repository)))

describe("in-process ingestion", () => {
  it.live("submit returns once the batch is stored", () =>
    Effect.gen(function*() {
      const inbox = yield* RatingEventInbox
      const repository = yield* RatingRepository
      yield* inbox.submit([event("a", 4), event("b", 8), event("a", 6)])
      assert.deepStrictEqual(
        yield* repository.aggregate({ recordType: "movie", recordId: movie }),
        new AggregatedRating({ count: 2, sum: 14 })
      )
    }).pipe(Effect.provide(Ingestion(RatingRepositoryMemory.layer))))

  it.live("a storage outage is retried, each failure logged: the batch is stored once storage is back", () => {
    const logs = Logs.make()
    return Effect.gen(function*() {
      const inbox = yield* RatingEventInbox
      const repository = yield* RatingRepository
      yield* inbox.submit([event("a", 3)])
      assert.deepStrictEqual(
        yield* repository.aggregate({ recordType: "movie", recordId: movie }),
        new AggregatedRating({ count: 1, sum: 3 })
      )
      assert.deepStrictEqual(logs.at("WARN").map((line) => line.message), [
        "storing rating events failed; retrying",
        "storing rating events failed; retrying"
      ])
    }).pipe(Effect.provide(Ingestion(FlakyRepository(2))), Effect.provide(logs.layer))
  })

  it.live("events storage refuses: the submitter gets InvalidArgument, none of them is applied, and later submissions go through", () =>
    Effect.gen(function*() {
      const inbox = yield* RatingEventInbox
      const repository = yield* RatingRepository
      const error = yield* Effect.flip(inbox.submit([event("a", 4), event("refused", 8)]))
      assert.instanceOf(error, InvalidArgument)
      assert.strictEqual(error.message, "events: cannot be stored: a string is not text its column can hold (injected)")
      yield* inbox.submit([event("b", 6)])
      assert.deepStrictEqual(
        yield* repository.aggregate({ recordType: "movie", recordId: movie }),
        new AggregatedRating({ count: 1, sum: 6 })
      )
    }).pipe(Effect.provide(Ingestion(RefusingRepository))))

  it.live("stopping answers waiting submitters with ServiceUnavailable", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      // No ingester: nothing consumes, so the submission waits until the transport stops.
      const context = yield* Layer.buildWithScope(RatingEventSourceInProcess.layer, scope)
      const inbox = Effect.runSync(Effect.provide(RatingEventInbox, context))
      const pending = yield* Effect.fork(inbox.submit([event("a", 1)]))
      // Suspended = queued and awaiting its result (the queue has room, so offering never suspends).
      yield* Fiber.status(pending).pipe(Effect.repeat({ until: (status) => status._tag === "Suspended" }))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Fiber.join(pending))
      assert.instanceOf(error, ServiceUnavailable)
      assert.strictEqual(error.reason, "the service is stopping")
    }))

  it.live("a submission its caller abandoned is not applied later", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const transport = yield* Layer.buildWithScope(
        Layer.merge(RatingEventSourceInProcess.layer, RatingRepositoryMemory.layer),
        scope
      )
      const inbox = Context.get(transport, RatingEventInbox)
      const repository = Context.get(transport, RatingRepository)
      // Nothing consumes yet: the caller waits, then gives up (as on a deadline).
      const abandoned = yield* Effect.fork(inbox.submit([event("late", 1)]))
      yield* Fiber.status(abandoned).pipe(Effect.repeat({ until: (status) => status._tag === "Suspended" }))
      yield* Fiber.interrupt(abandoned)
      // Now consume; the next submission completing proves the queue got past the abandoned one.
      yield* Layer.buildWithScope(Ingester.layer.pipe(Layer.provide(Layer.succeedContext(transport))), scope)
      yield* inbox.submit([event("on-time", 8)])
      assert.deepStrictEqual(
        yield* repository.aggregate({ recordType: "movie", recordId: movie }),
        new AggregatedRating({ count: 1, sum: 8 })
      )
      yield* Scope.close(scope, Exit.void)
    }))
})
