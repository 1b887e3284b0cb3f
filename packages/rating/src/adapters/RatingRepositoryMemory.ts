/** Ratings and aggregates in process memory: for development and tests. */
import {
  AggregatedRating,
  type RankedRecord,
  type RatingEvent,
  type RatingKey,
  type RecordKey,
  type RecordType
} from "@movieapp/contracts/Rating"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer, Option } from "effect"
import * as Aggregate from "../domain/Aggregate.js"
import * as Identity from "../domain/Identity.js"
import * as Ranking from "../domain/Ranking.js"
import * as Redelivery from "../domain/Redelivery.js"
import type { StreamBatch } from "../ports/RatingEventSource.js"
import { RatingRepository, type StreamBatchResult } from "../ports/RatingRepository.js"

export const make = Effect.gen(function*() {
  const span = yield* Telemetry.span
  const prior = yield* Ranking.RankingPrior
  const spanAggregate = span("RatingRepository.aggregate")
  const spanAggregates = span("RatingRepository.aggregates")
  const spanRanked = span("RatingRepository.ranked")
  const ratings = new Map<string, number>()
  const aggregates = new Map<string, { readonly key: RecordKey; readonly aggregate: AggregatedRating }>()
  const checkpoints = new Map<string, bigint>()
  // Per record type, the ranking as of the last read; dropped by any change to an aggregate.
  const rankings = new Map<RecordType, ReadonlyArray<RankedRecord>>()

  const ranking = (recordType: RecordType) => {
    let sorted = rankings.get(recordType)
    if (sorted === undefined) {
      const records: Array<RankedRecord> = []
      for (const { aggregate, key } of aggregates.values()) {
        if (key.recordType === recordType) records.push(Ranking.ranked(prior, key.recordId, aggregate))
      }
      sorted = records.sort(Ranking.order)
      rankings.set(recordType, sorted)
    }
    return sorted
  }

  // Synchronous, so a batch is applied without any other fiber seeing it half done.
  const change = (key: RatingKey, next: Option.Option<number>): boolean => {
    const id = Identity.rating(key)
    const previous = Option.fromNullable(ratings.get(id))
    if (Option.isNone(previous) && Option.isNone(next)) return false
    const record = Identity.record(key)
    // Computed before anything changes: should it throw (a bug), storage stays as it was.
    const updated = Aggregate.apply(aggregates.get(record)?.aggregate ?? AggregatedRating.empty, previous, next)
    if (Option.isSome(next)) ratings.set(id, next.value)
    else ratings.delete(id)
    if (updated.count === 0) aggregates.delete(record)
    else aggregates.set(record, { key: { recordType: key.recordType, recordId: key.recordId }, aggregate: updated })
    rankings.delete(key.recordType)
    return Option.isSome(previous)
  }

  const applyAll = (events: ReadonlyArray<RatingEvent>) => {
    for (const event of events) change(event, event.eventType === "put" ? Option.some(event.value) : Option.none())
  }

  return RatingRepository.of({
    aggregate: (key) =>
      spanAggregate(Effect.sync(() => aggregates.get(Identity.record(key))?.aggregate ?? AggregatedRating.empty)),
    aggregates: ({ recordIds, recordType }) =>
      spanAggregates(
        Effect.sync(() =>
          recordIds.map((recordId) =>
            aggregates.get(Identity.record({ recordType, recordId }))?.aggregate ?? AggregatedRating.empty
          )
        )
      ),
    ranked: ({ after, limit, minCount, recordType }) =>
      spanRanked(Effect.sync(() => {
        const sorted = ranking(recordType)
        // The first record after the cursor, by binary search.
        let low = 0
        let high = sorted.length
        if (after !== undefined) {
          while (low < high) {
            const middle = (low + high) >>> 1
            if (Ranking.isAfter(sorted[middle]!, after)) high = middle
            else low = middle + 1
          }
        }
        const page: Array<RankedRecord> = []
        for (let i = low; i < sorted.length && page.length < limit; i++) {
          if (sorted[i]!.rating.count >= minCount) page.push(sorted[i]!)
        }
        return page
      })),
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
