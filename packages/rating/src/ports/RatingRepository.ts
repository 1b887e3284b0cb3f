/**
 * Storage port of the rating service: one rating per (record, user) and one
 * aggregate per record, kept consistent with each other by every write.
 * Infrastructure failures surface as ServiceUnavailable; events storage cannot
 * hold as sent as StorageRefused.
 */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import type {
  AggregatedRating,
  RankedRecord,
  RankQuery,
  Rating,
  RatingEvent,
  RatingKey,
  RecordKey,
  RecordKeys
} from "@movieapp/contracts/Rating"
import { Context, Data, type Effect, type Option } from "effect"
import type { StreamBatch } from "./RatingEventSource.js"

/**
 * Storage refused the events of a write: it cannot hold a value as sent. The
 * write changed nothing, and the same events would be refused again (unlike
 * ServiceUnavailable, retrying does not help). When a write holds several events,
 * which one is at fault may be unknown.
 */
export class StorageRefused extends Data.TaggedError("StorageRefused")<{ readonly reason: string }> {
  override get message() {
    return `storage refused the events: ${this.reason}`
  }
}

export class RatingRepository extends Context.Tag("@movieapp/rating/RatingRepository")<RatingRepository, {
  /** The record's aggregate; `AggregatedRating.empty` when nobody rated it. Never scans ratings. */
  readonly aggregate: (key: RecordKey) => Effect.Effect<AggregatedRating, ServiceUnavailable>
  /** The aggregate of every record of `keys`, in their order, in one read. */
  readonly aggregates: (keys: RecordKeys) => Effect.Effect<ReadonlyArray<AggregatedRating>, ServiceUnavailable>
  /**
   * Records of `query.recordType` with at least `query.minCount` ratings, by
   * damped score (Ranking, with the RankingPrior the adapter was built with)
   * descending, then id descending by code point, after `query.after`; at most
   * `query.limit`. Never scans ratings (MySQL reads an index in ranking order).
   */
  readonly ranked: (query: RankQuery) => Effect.Effect<ReadonlyArray<RankedRecord>, ServiceUnavailable>
  /** Creates or replaces the user's rating of the record. */
  readonly put: (rating: Rating) => Effect.Effect<void, StorageRefused | ServiceUnavailable>
  /** Removes the user's rating; false when there was none. */
  readonly remove: (key: RatingKey) => Effect.Effect<boolean, StorageRefused | ServiceUnavailable>
  /**
   * Applies events in order, all or none. A delete of a rating that does not
   * exist changes nothing (events may be redelivered).
   */
  readonly applyEvents: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, StorageRefused | ServiceUnavailable>
  /**
   * Applies a batch from a redelivering stream exactly once: events below the
   * stream's checkpoint were applied before and are skipped, the rest are applied,
   * and the checkpoint moves to `batch.next`, all in one transaction.
   */
  readonly applyStreamBatch: (
    batch: StreamBatch
  ) => Effect.Effect<StreamBatchResult, StorageRefused | ServiceUnavailable>
  /** The position after the last batch applied from `stream`; None before the first. */
  readonly checkpoint: (stream: string) => Effect.Effect<Option.Option<bigint>, ServiceUnavailable>
}>() {}

export interface StreamBatchResult {
  readonly applied: number
  /** Events skipped because an earlier delivery of them was applied. */
  readonly redelivered: number
}
