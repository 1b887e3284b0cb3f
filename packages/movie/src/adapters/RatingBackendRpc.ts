/** RatingBackend over Effect RPC to instances found through discovery. */
import { RatingRpcs } from "@movieapp/contracts/Rating"
import * as ServiceClient from "@movieapp/platform/ServiceClient"
import { Effect, Layer } from "effect"
import { RatingBackend } from "../ports/RatingBackend.js"

export const layer = (options: Omit<ServiceClient.Options, "service">) =>
  Layer.scoped(
    RatingBackend,
    Effect.gen(function*() {
      const rating = yield* ServiceClient.make(RatingRpcs, { ...options, service: "rating" })
      return RatingBackend.of({
        aggregate: (key) =>
          rating.call("RatingService.GetAggregatedRating", (client) => client.GetAggregatedRating(key)),
        aggregates: (keys) =>
          rating.call("RatingService.GetAggregatedRatings", (client) => client.GetAggregatedRatings(keys)),
        ranked: (query) => rating.call("RatingService.ListRanked", (client) => client.ListRanked(query))
      })
    })
  )
