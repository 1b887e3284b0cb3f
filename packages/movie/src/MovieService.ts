/**
 * The gateway's use case: metadata and rating, fetched concurrently. An unknown
 * movie fails with MetadataNotFound (and the rating call is interrupted); a movie
 * nobody rated has an empty aggregate; a rating service that cannot be reached
 * within the retry budget fails the call with ServiceUnavailable rather than
 * passing "no rating" off as the truth.
 */
import type { MovieId } from "@movieapp/contracts/Metadata"
import { RecordId } from "@movieapp/contracts/Rating"
import { Context, Effect, Layer } from "effect"
import { MovieDetails } from "./domain/MovieDetails.js"
import { MetadataBackend, type MetadataBackendError } from "./ports/MetadataBackend.js"
import { RatingBackend, type RatingBackendError } from "./ports/RatingBackend.js"

export class MovieService extends Context.Tag("@movieapp/movie/MovieService")<MovieService, {
  readonly details: (movieId: MovieId) => Effect.Effect<MovieDetails, MetadataBackendError | RatingBackendError>
}>() {}

export const layer = Layer.effect(
  MovieService,
  Effect.gen(function* () {
    const metadata = yield* MetadataBackend
    const ratings = yield* RatingBackend
    return MovieService.of({
      details: Effect.fn("MovieService.details")(function* (movieId) {
        // The metadata answer decides first: an unknown movie is NOT_FOUND even when
        // the rating call failed sooner; only a known movie reports the rating's failure.
        const [found, rating] = yield* Effect.all(
          [metadata.get(movieId), Effect.either(ratings.aggregate({ recordType: "movie", recordId: RecordId.make(movieId) }))],
          { concurrency: 2 }
        )
        return new MovieDetails({ metadata: found, rating: yield* rating })
      })
    })
  })
)
