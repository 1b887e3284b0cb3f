/** Effect RPC edge: what the gateway and the ingestor call; writes verified by the Authentication middleware. */
import { Principal, RATINGS_INGEST_SCOPE, requireScope, requireSubject } from "@movieapp/contracts/Auth"
import { InvalidArgument } from "@movieapp/contracts/Errors"
import { type RatingEvent, RatingRpcs } from "@movieapp/contracts/Rating"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import * as Auth from "@movieapp/platform/Auth"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import { Effect, Either, Layer } from "effect"
import { RatingService } from "../RatingService.js"

/** Every submitted event, or the first that is not a valid one, named by its index and field. */
const validEvents = (values: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<RatingEvent>, InvalidArgument> => {
  const events: Array<RatingEvent> = []
  for (const [index, value] of values.entries()) {
    const decoded = RatingEventJson.decodeOrInvalid(value)
    if (Either.isLeft(decoded)) {
      const { field, reason } = decoded.left
      return Effect.fail(
        new InvalidArgument({ field: field === "" ? `events.${index}` : `events.${index}.${field}`, reason })
      )
    }
    events.push(decoded.right)
  }
  return Effect.succeed(events)
}

const handlers = RatingRpcs.toLayer(
  Effect.gen(function*() {
    const ratings = yield* RatingService
    return {
      GetAggregatedRating: (key) => ratings.aggregate(key),
      GetAggregatedRatings: (keys) => ratings.aggregates(keys),
      ListRanked: (query) => ratings.ranked(query),
      PutRating: (rating) =>
        Effect.flatMap(Principal, (caller) => requireSubject(caller, rating.userId)).pipe(
          Effect.zipRight(ratings.put(rating))
        ),
      DeleteRating: (key) =>
        Effect.flatMap(Principal, (caller) => requireSubject(caller, key.userId)).pipe(
          Effect.zipRight(ratings.remove(key))
        ),
      SubmitRatingEvents: ({ events }) =>
        Effect.flatMap(Principal, (caller) => requireScope(caller, RATINGS_INGEST_SCOPE)).pipe(
          Effect.zipRight(validEvents(events)),
          Effect.flatMap(ratings.submit),
          Effect.as({ applied: events.length })
        )
    }
  })
)

export const server = (options: RpcTransport.ServerOptions) =>
  RpcTransport.serve(RatingRpcs, options).pipe(Layer.provide([handlers, Auth.rpcAuthentication]))
