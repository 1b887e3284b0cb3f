/** Ratings and aggregates in process memory: for development and tests. */
import { AggregatedRating, type RatingEvent, type RatingKey } from "@movieapp/contracts/Rating"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer, Option } from "effect"
import * as Aggregate from "../domain/Aggregate.js"
import * as Identity from "../domain/Identity.js"
import * as Redelivery from "../domain/Redelivery.js"
import type { StreamBatch } from "../ports/RatingEventSource.js"
import { RatingRepository, type StreamBatchResult } from "../ports/RatingRepository.js"

export const make = Effect.map(Telemetry.span, (span) => {
  const spanAggregate = span("RatingRepository.aggregate")
  const ratings = new Map<string, number>()
  const aggregates = new Map<string, AggregatedRating>()
  const checkpoints = new Map<string, bigint>()

  // Synchronous, so a batch is applied without any other fiber seeing it half done.
  const change = (key: RatingKey, next: Option.Option<number>): boolean => {
    const id = Identity.rating(key)
    const previous = Option.fromNullable(ratings.get(id))
    if (Option.isNone(previous) && Option.isNone(next)) return false
    const record = Identity.record(key)
    // Computed before anything changes: should it throw (a bug), storage stays as it was.
    const updated = Aggregate.apply(aggregates.get(record) ?? AggregatedRating.empty, previous, next)
    if (Option.isSome(next)) ratings.set(id, next.value)
    else ratings.delete(id)
    if (updated.count === 0) aggregates.delete(record)
    else aggregates.set(record, updated)
    return Option.isSome(previous)
  }

  const applyAll = (events: ReadonlyArray<RatingEvent>) => {
    for (const event of events) change(event, event.eventType === "put" ? Option.some(event.value) : Option.none())
  }

  return RatingRepository.of({
    aggregate: (key) =>
      spanAggregate(Effect.sync(() => aggregates.get(Identity.record(key)) ?? AggregatedRating.empty)),
    put: (rating) =>
      Effect.sync(() => void change(rating, Option.some(rating.value))).pipe(Effect.withSpan("RatingRepository.put")),
    remove: (key) => Effect.sync(() => change(key, Option.none())).pipe(Effect.withSpan("RatingRepository.remove")),
    applyEvents: (events) =>
      Effect.sync(() => applyAll(events)).pipe(
        Effect.withSpan("RatingRepository.applyEvents", { attributes: { "batch.size": events.length } })
      ),
    applyStreamBatch: (batch: StreamBatch) =>
      Effect.sync((): StreamBatchResult => {
        const split = Redelivery.split(batch, Option.fromNullable(checkpoints.get(batch.stream)))
        applyAll(split.fresh)
        checkpoints.set(batch.stream, split.next)
        return { applied: split.fresh.length, redelivered: split.redelivered }
      }).pipe(
        Effect.withSpan("RatingRepository.applyStreamBatch", {
          attributes: { "batch.size": batch.events.length, "batch.stream": batch.stream }
        })
      ),
    checkpoint: (stream) =>
      Effect.sync(() => Option.fromNullable(checkpoints.get(stream))).pipe(
        Effect.withSpan("RatingRepository.checkpoint")
      )
  })
})

export const layer: Layer.Layer<RatingRepository> = Layer.effect(RatingRepository, make)
