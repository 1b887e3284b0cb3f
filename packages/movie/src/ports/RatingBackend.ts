/** The rating service as the gateway needs it. */
import type { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { AggregatedRating, RecordKey } from "@movieapp/contracts/Rating"
import { Context, type Effect } from "effect"

export type RatingBackendError = InvalidArgument | ServiceUnavailable | DeadlineExceeded

export class RatingBackend extends Context.Tag("@movieapp/movie/RatingBackend")<RatingBackend, {
  readonly aggregate: (key: RecordKey) => Effect.Effect<AggregatedRating, RatingBackendError>
}>() {}
