/** HTTP JSON edge: `GET /movie?id=` answers `{"metadata":{...},"rating":n,"ratingsCount":n}`; errors are Http.ErrorBody. */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpLayerRouter } from "@effect/platform"
import { Metadata, MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as Http from "@movieapp/platform/Http"
import { Effect, Layer, Option, Schema } from "effect"
import { MovieService } from "../MovieService.js"

export const MovieDetailsResponse = Schema.Struct({
  metadata: Metadata,
  /** Mean rating; absent when nobody rated the movie. */
  rating: Schema.optional(Schema.Number),
  ratingsCount: Schema.NonNegativeInt
})

const NotFound = Http.apiError(MetadataNotFound, { status: 404, code: Code.NOT_FOUND })

export class MovieHttpApi extends HttpApi.make("movie").add(
  HttpApiGroup.make("movie").add(
    HttpApiEndpoint.get("get", "/movie")
      .setUrlParams(Schema.Struct({ id: MovieId }))
      .addSuccess(MovieDetailsResponse)
      .addError(NotFound)
      .addError(Http.ServiceUnavailableError)
      .addError(Http.DeadlineExceededError)
      .addError(Http.InvalidArgumentError)
  )
) {}

const handlers = HttpApiBuilder.group(MovieHttpApi, "movie", (handlers) =>
  Effect.gen(function*() {
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
