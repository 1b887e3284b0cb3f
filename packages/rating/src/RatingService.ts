/** The rating use cases; every edge (gRPC, HTTP, Effect RPC) calls these. */
import { InvalidArgument, type ServiceUnavailable } from "@movieapp/contracts/Errors"
import {
  type AggregatedRating,
  type RankedRecord,
  type RankQuery,
  type Rating,
  type RatingEvent,
  type RatingKey,
  RatingNotFound,
  type RecordKey,
  type RecordKeys
} from "@movieapp/contracts/Rating"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Context, Effect, Layer } from "effect"
import { RatingEventInbox } from "./ports/RatingEventInbox.js"
import { RatingRepository, type StorageRefused } from "./ports/RatingRepository.js"

export class RatingService extends Context.Tag("@movieapp/rating/RatingService")<RatingService, {
  readonly aggregate: (key: RecordKey) => Effect.Effect<AggregatedRating, ServiceUnavailable>
  /** Aggregates of many records in one read, in their order. */
  readonly aggregates: (keys: RecordKeys) => Effect.Effect<ReadonlyArray<AggregatedRating>, ServiceUnavailable>
  /** A page of the ranking by damped mean (see RatingRepository.ranked). */
  readonly ranked: (query: RankQuery) => Effect.Effect<ReadonlyArray<RankedRecord>, ServiceUnavailable>
  readonly put: (rating: Rating) => Effect.Effect<void, InvalidArgument | ServiceUnavailable>
  readonly remove: (key: RatingKey) => Effect.Effect<void, RatingNotFound | InvalidArgument | ServiceUnavailable>
  /** Applies submitted events through the same path as consumed ones. */
  readonly submit: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, InvalidArgument | ServiceUnavailable>
}>() {}

/** What the caller sent cannot be stored: bad input, though it passed validation. */
const notStorable = (refused: StorageRefused) =>
  new InvalidArgument({ field: "", reason: `the rating cannot be stored: ${refused.reason}` })

export const layer = Layer.effect(
  RatingService,
  Effect.gen(function*() {
    const repository = yield* RatingRepository
    const inbox = yield* RatingEventInbox
    const span = yield* Telemetry.span
    return RatingService.of({
      aggregate: Effect.fnUntraced(function*(key) {
        return yield* repository.aggregate(key)
      }, span("RatingService.aggregate")),
      aggregates: Effect.fnUntraced(function*(keys) {
        return yield* repository.aggregates(keys)
      }, span("RatingService.aggregates")),
      ranked: Effect.fnUntraced(function*(query) {
        return yield* repository.ranked(query)
      }, span("RatingService.ranked")),
      put: Effect.fnUntraced(function*(rating) {
        yield* repository.put(rating).pipe(
          Effect.catchTag("StorageRefused", (refused) => Effect.fail(notStorable(refused)))
        )
      }, span("RatingService.put")),
      remove: Effect.fnUntraced(function*(key) {
        const removed = yield* repository.remove(key).pipe(
          Effect.catchTag("StorageRefused", (refused) => Effect.fail(notStorable(refused)))
        )
        if (!removed) return yield* new RatingNotFound(key)
      }, span("RatingService.remove")),
      submit: Effect.fnUntraced(function*(events) {
        yield* inbox.submit(events)
      }, span("RatingService.submit"))
    })
  })
)
