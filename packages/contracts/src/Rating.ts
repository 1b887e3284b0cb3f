/** Ratings: ids, the aggregate, rating events, errors and the Effect RPC group. */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Option, Schema } from "effect"
import { Authentication, PermissionDenied } from "./Auth.js"
import { InvalidArgument, ServiceUnavailable } from "./Errors.js"
import { batchOf, identifier, ListLimit } from "./Fields.js"

export const RecordId = identifier("RecordId")
export type RecordId = typeof RecordId.Type

export const UserId = identifier("UserId")
export type UserId = typeof UserId.Type

export const RECORD_TYPES = ["movie", "tv"] as const
export const RecordType = Schema.Literal(...RECORD_TYPES).annotations({
  // override: otherwise the union reports each literal it did not match.
  message: () => ({ message: `must be one of ${RECORD_TYPES.map((t) => `"${t}"`).join(", ")}`, override: true })
})
export type RecordType = typeof RecordType.Type

export const MIN_RATING = 1
export const MAX_RATING = 10
export const RatingValue = Schema.Number.pipe(
  Schema.int(),
  Schema.between(MIN_RATING, MAX_RATING),
  Schema.brand("RatingValue")
).annotations({
  // override: one message whichever check (number, integer, range) failed.
  message: () => ({ message: `must be an integer from ${MIN_RATING} to ${MAX_RATING}`, override: true })
})
export type RatingValue = typeof RatingValue.Type

/** The thing being rated. */
export const RecordKey = Schema.Struct({ recordType: RecordType, recordId: RecordId })
export type RecordKey = typeof RecordKey.Type

/** One user's rating of one record. */
export const RatingKey = Schema.Struct({ ...RecordKey.fields, userId: UserId })
export type RatingKey = typeof RatingKey.Type

export const Rating = Schema.Struct({ ...RatingKey.fields, value: RatingValue })
export type Rating = typeof Rating.Type

/** Count and sum of a record's ratings; the mean is derived, so it never drifts from them. */
export class AggregatedRating extends Schema.Class<AggregatedRating>("AggregatedRating")({
  count: Schema.NonNegativeInt,
  sum: Schema.NonNegativeInt
}) {
  static readonly empty = new AggregatedRating({ count: 0, sum: 0 })

  /** None when nobody rated the record. */
  get average(): Option.Option<number> {
    return this.count === 0 ? Option.none() : Option.some(this.sum / this.count)
  }
}

/** Who reported a rating event (the original's field; carried, not used). */
export const ProviderId = identifier("ProviderId")
export type ProviderId = typeof ProviderId.Type

const providerId = Schema.optional(ProviderId)

/**
 * A rating event in the original JSON shape
 * (`{"userId","recordId","recordType","value","providerId","eventType"}`), as the
 * ingestor publishes it and the rating service consumes it.
 */
export const PutRatingEvent = Schema.Struct({
  eventType: Schema.Literal("put"),
  ...Rating.fields,
  providerId
})
export const DeleteRatingEvent = Schema.Struct({
  eventType: Schema.Literal("delete"),
  ...RatingKey.fields,
  /** Ignored: a delete removes whatever the user's rating is. */
  value: Schema.optional(Schema.Unknown),
  providerId
})
export const RatingEvent = Schema.Union(PutRatingEvent, DeleteRatingEvent)
export type RatingEvent = typeof RatingEvent.Type

export class RatingNotFound extends Schema.TaggedError<RatingNotFound>()(
  "RatingNotFound",
  RatingKey.fields
) {
  override get message() {
    return `user ${this.userId} has no rating for ${this.recordType} ${this.recordId}`
  }
}

/** How many events of a submitted batch were applied (all of them, or the call fails). */
export const SubmitResult = Schema.Struct({ applied: Schema.NonNegativeInt })

/** Records of one type, for a batch read of their aggregates ({@link batchOf}). */
export const RecordKeys = Schema.Struct({
  recordType: RecordType,
  recordIds: batchOf(RecordId)
})
export type RecordKeys = typeof RecordKeys.Type

/**
 * A position in the ranking: the damped score and id of the last record seen.
 * The ranking continues after it in (score descending, id descending) order.
 */
export const RankCursor = Schema.Struct({ score: Schema.Number, recordId: RecordId })
export type RankCursor = typeof RankCursor.Type

/** What a ranked listing asks for: records of a type with at least `minCount` ratings, best first. */
export const RankQuery = Schema.Struct({
  recordType: RecordType,
  minCount: Schema.Number.pipe(Schema.int(), Schema.positive()).annotations({
    message: () => ({ message: "must be an integer of at least 1", override: true })
  }),
  limit: ListLimit,
  after: Schema.optional(RankCursor)
})
export type RankQuery = typeof RankQuery.Type

/**
 * A record in the ranking with its aggregate and its damped score: the Bayesian
 * average `(C·m + sum) / (C + count)` of the rating service's prior (weight C,
 * mean m), by which the ranking is ordered.
 */
export class RankedRecord extends Schema.Class<RankedRecord>("RankedRecord")({
  recordId: RecordId,
  rating: AggregatedRating,
  score: Schema.Number
}) {}

export class RatingRpcs extends RpcGroup.make(
  Rpc.make("GetAggregatedRating", {
    payload: RecordKey,
    success: AggregatedRating,
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  }),
  /** The aggregate of every id, in the order asked (`AggregatedRating.empty` for one nobody rated). */
  Rpc.make("GetAggregatedRatings", {
    payload: RecordKeys,
    success: Schema.Array(AggregatedRating),
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  }),
  /** Up to `limit` records by damped score, best first, after `after` when given. */
  Rpc.make("ListRanked", {
    payload: RankQuery,
    success: Schema.Array(RankedRecord),
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  }),
  /** Needs a token whose subject is the rating's user (see Auth). */
  Rpc.make("PutRating", {
    payload: Rating,
    error: Schema.Union(InvalidArgument, ServiceUnavailable, PermissionDenied)
  }).middleware(Authentication),
  /** Needs a token whose subject is the rating's user (see Auth). */
  Rpc.make("DeleteRating", {
    payload: RatingKey,
    error: Schema.Union(RatingNotFound, InvalidArgument, ServiceUnavailable, PermissionDenied)
  }).middleware(Authentication),
  /**
   * Hands a batch of rating events to the service's in-process ingestion. The
   * events are rating events in their JSON shape (RatingEventJson); the handler
   * validates them, so that a bad one is answered as InvalidArgument naming it
   * (`events.3.userId`) rather than as a payload the server cannot decode.
   * Events speak for any user: needs a token with the scope `ratings:ingest`.
   */
  Rpc.make("SubmitRatingEvents", {
    payload: { events: Schema.Array(Schema.Unknown) },
    success: SubmitResult,
    error: Schema.Union(InvalidArgument, ServiceUnavailable, PermissionDenied)
  }).middleware(Authentication)
) {}
