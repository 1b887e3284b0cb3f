/**
 * The gateway's use case: metadata and rating, fetched concurrently. An unknown
 * movie fails with MetadataNotFound (and the rating call is interrupted); a movie
 * nobody rated has an empty aggregate; a rating service that cannot be reached
 * within the retry budget fails the call with ServiceUnavailable rather than
 * passing "no rating" off as the truth.
 */
import type { MovieId } from "@movieapp/contracts/Metadata"
import { RecordId } from "@movieapp/contracts/Rating"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Context, Effect, Fiber, Layer } from "effect"
import { MovieDetails } from "./domain/MovieDetails.js"
import { MetadataBackend, type MetadataBackendError } from "./ports/MetadataBackend.js"
import { RatingBackend, type RatingBackendError } from "./ports/RatingBackend.js"

export class MovieService extends Context.Tag("@movieapp/movie/MovieService")<MovieService, {
  readonly details: (movieId: MovieId) => Effect.Effect<MovieDetails, MetadataBackendError | RatingBackendError>
}>() {}

export const layer = Layer.effect(
  MovieService,
  Effect.gen(function*() {
    const metadata = yield* MetadataBackend
    const ratings = yield* RatingBackend
    const span = yield* Telemetry.span
    return MovieService.of({
      details: Effect.fnUntraced(function*(movieId) {
        // The rating call runs beside the metadata call, in a fiber of its own (one
        // fork: `Effect.all` would cost several times as much per call). The metadata
        // answer decides first: an unknown movie is NOT_FOUND even when the rating call
        // failed sooner, and ends this fiber, which interrupts the rating call.
        const rating = yield* Effect.fork(ratings.aggregate({ recordType: "movie", recordId: RecordId.make(movieId) }))
        const found = yield* metadata.get(movieId)
        // Awaited, not joined: joining also merges the child's fiber refs into this
        // fiber, work this call does not need.
        const aggregate = yield* Effect.flatten(Fiber.await(rating))
        // Both values were decoded from the backends' answers: validating them again would only cost.
        return new MovieDetails({ metadata: found, rating: aggregate }, true)
      }, span("MovieService.details"))
    })
  })
)
