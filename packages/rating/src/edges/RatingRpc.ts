/** Effect RPC edge: what the gateway and the ingestor call. */
import { InvalidArgument } from "@movieapp/contracts/Errors"
import { type RatingEvent, RatingRpcs } from "@movieapp/contracts/Rating"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
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
      PutRating: (rating) => ratings.put(rating),
      DeleteRating: (key) => ratings.remove(key),
      SubmitRatingEvents: ({ events }) =>
        validEvents(events).pipe(
          Effect.flatMap(ratings.submit),
          Effect.as({ applied: events.length })
        )
    }
  })
)

export const server = (options: RpcTransport.ServerOptions) =>
  RpcTransport.serve(RatingRpcs, options).pipe(Layer.provide(handlers))
