/**
 * gRPC edge: movieapp.v1.MovieService and the original unpackaged MovieService.
 * The original's float rating cannot say "not rated": it gets 0 there, as before.
 */
import type { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { type MetadataNotFound, MovieId, MovieIds } from "@movieapp/contracts/Metadata"
import * as GrpcServer from "@movieapp/platform/GrpcServer"
import * as GrpcStatus from "@movieapp/platform/GrpcStatus"
import * as Validation from "@movieapp/platform/Validation"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1 from "@movieapp/proto/gen/movieapp/v1/movie"
import { Effect, Match, Option, Schema } from "effect"
import * as Listing from "../domain/Listing.js"
import type { MovieDetails } from "../domain/MovieDetails.js"
import { MovieService } from "../MovieService.js"

const Request = Schema.Struct({ movieId: MovieId })
const BatchRequest = Schema.Struct({ movieIds: MovieIds })
const listFields: Listing.FieldNames = {
  pageSize: "page_size",
  pageToken: "page_token",
  orderBy: "order_by",
  minRatingsCount: "min_ratings_count",
  nextPageToken: "next_page_token"
}

const v1Details = ({ dampedRating, metadata, rating }: MovieDetails): v1.MovieDetails => ({
  metadata,
  rating: Option.getOrUndefined(rating.average),
  ratingsCount: rating.count,
  dampedRating
})

export const toStatus = Match.type<MetadataNotFound | InvalidArgument | ServiceUnavailable | DeadlineExceeded>().pipe(
  Match.tagsExhaustive({
    MetadataNotFound: (error) => GrpcStatus.notFound(error.message),
    InvalidArgument: (error) => GrpcStatus.invalidArgument(error.message),
    ServiceUnavailable: (error) => GrpcStatus.unavailable(error.message),
    DeadlineExceeded: (error) => GrpcStatus.deadlineExceeded(error.message)
  })
)

/** The versioned and the original MovieService, over the same handler. */
export const services = Effect.gen(function*() {
  const decodeRequest = Validation.decode(Request)
  const decodeBatchRequest = Validation.decode(BatchRequest)
  const movies = yield* MovieService
  const details = (request: unknown) =>
    decodeRequest(request).pipe(
      Effect.flatMap(({ movieId }) => movies.details(movieId)),
      Effect.mapError(toStatus)
    )
  return [
    GrpcServer.service(v1.MovieServiceService, {
      getMovieDetails: (request) => Effect.map(details(request), (found) => ({ movieDetails: v1Details(found) })),
      listMovies: (request) =>
        Listing.parse(request, listFields).pipe(
          Effect.flatMap(movies.list),
          Effect.map((page) => ({
            movies: page.movies.map(v1Details),
            nextPageToken: page.next === undefined ? "" : Listing.encodeToken(page.next)
          })),
          Effect.mapError(toStatus)
        ),
      batchGetMovieDetails: (request) =>
        decodeBatchRequest(request).pipe(
          Effect.flatMap(({ movieIds }) => movies.batch(movieIds)),
          Effect.map((batch) => ({ movies: batch.movies.map(v1Details), missingMovieIds: [...batch.missing] })),
          Effect.mapError(toStatus)
        )
    }),
    GrpcServer.service(legacy.MovieServiceService, {
      getMovieDetails: (request) =>
        Effect.map(details(request), ({ metadata, rating }) => ({
          movieDetails: { metadata, rating: Option.getOrElse(rating.average, () => 0) }
        }))
    })
  ]
})
