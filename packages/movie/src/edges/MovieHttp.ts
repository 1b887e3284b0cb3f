/** HTTP JSON edge: `GET /movie?id=` answers `{"metadata":{...},"rating":n,"ratingsCount":n}`. */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpLayerRouter } from "@effect/platform"
import { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Metadata, MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import { Effect, Layer, Option, Schema } from "effect"
import { MovieService } from "../MovieService.js"

export const MovieDetailsResponse = Schema.Struct({
  metadata: Metadata,
  /** Mean rating; absent when nobody rated the movie. */
  rating: Schema.optional(Schema.Number),
  ratingsCount: Schema.NonNegativeInt
})

export class MovieHttpApi extends HttpApi.make("movie").add(
  HttpApiGroup.make("movie").add(
    HttpApiEndpoint.get("get", "/movie")
      .setUrlParams(Schema.Struct({ id: MovieId }))
      .addSuccess(MovieDetailsResponse)
      .addError(MetadataNotFound)
      .addError(ServiceUnavailable)
      .addError(DeadlineExceeded)
      .addError(InvalidArgument)
  )
) {}

const handlers = HttpApiBuilder.group(MovieHttpApi, "movie", (handlers) =>
  Effect.gen(function* () {
    const movies = yield* MovieService
    return handlers.handle("get", ({ urlParams }) =>
      Effect.map(movies.details(urlParams.id), ({ metadata, rating }) => ({
        metadata,
        ratingsCount: rating.count,
        ...Option.match(rating.average, { onNone: () => ({}), onSome: (value) => ({ rating: value }) })
      })))
  }))

export const routes = HttpLayerRouter.addHttpApi(MovieHttpApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(handlers)
)
