/** The rating service as the gateway needs it. */
import type { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { AggregatedRating, RankedRecord, RankQuery, RecordKey, RecordKeys } from "@movieapp/contracts/Rating"
import { Context, type Effect } from "effect"

export type RatingBackendError = InvalidArgument | ServiceUnavailable | DeadlineExceeded

export class RatingBackend extends Context.Tag("@movieapp/movie/RatingBackend")<RatingBackend, {
  readonly aggregate: (key: RecordKey) => Effect.Effect<AggregatedRating, RatingBackendError>
  /** The aggregates of up to 100 records in one call, in their order. */
  readonly aggregates: (keys: RecordKeys) => Effect.Effect<ReadonlyArray<AggregatedRating>, RatingBackendError>
  /** A page of the ranking by damped mean. */
  readonly ranked: (query: RankQuery) => Effect.Effect<ReadonlyArray<RankedRecord>, RatingBackendError>
}>() {}
