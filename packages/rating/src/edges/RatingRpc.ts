/** Effect RPC edge: what the gateway and the ingestor call. */
import { RatingRpcs } from "@movieapp/contracts/Rating"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import { Effect, Layer } from "effect"
import { RatingService } from "../RatingService.js"

const handlers = RatingRpcs.toLayer(
  Effect.gen(function* () {
    const ratings = yield* RatingService
    return {
      GetAggregatedRating: (key) => ratings.aggregate(key),
      PutRating: (rating) => ratings.put(rating),
      DeleteRating: (key) => ratings.remove(key),
      SubmitRatingEvents: ({ events }) => ratings.submit(events).pipe(Effect.as({ applied: events.length }))
    }
  })
)

export const routes = RpcTransport.route(RatingRpcs).pipe(Layer.provide(handlers))
