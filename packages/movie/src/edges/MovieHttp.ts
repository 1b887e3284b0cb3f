/**
 * HTTP JSON edge: `GET /movie?id=` answers `{"metadata":{...},"rating":n,"ratingsCount":n}`;
 * `GET /movies?limit=&pageToken=&orderBy=&minRatingsCount=` a page of such movies and
 * `nextPageToken`; `POST /movies:batchGet` with `{"ids":[...]}` the known ones and
 * `missingIds`. The same rules as gRPC; errors are Http.ErrorBody.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpLayerRouter, OpenApi } from "@effect/platform"
import { Metadata, MetadataNotFound, MovieId, MovieIds } from "@movieapp/contracts/Metadata"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as Http from "@movieapp/platform/Http"
import { Effect, Layer, Option, Schema } from "effect"
import * as Listing from "../domain/Listing.js"
import type { MovieDetails } from "../domain/MovieDetails.js"
import { MovieService } from "../MovieService.js"

export const MovieDetailsResponse = Schema.Struct({
  metadata: Metadata,
  /** Mean rating; absent when nobody rated the movie. */
  rating: Schema.optional(Schema.Number),
  ratingsCount: Schema.NonNegativeInt,
  /** The damped mean the ranking orders by; in listings by rating only. */
  dampedRating: Schema.optional(Schema.Number)
})

export const MoviePageResponse = Schema.Struct({
  movies: Schema.Array(MovieDetailsResponse),
  /** Pass as `pageToken` for the next page; absent on the last page. */
  nextPageToken: Schema.optional(Schema.String)
})

export const MovieBatchResponse = Schema.Struct({
  movies: Schema.Array(MovieDetailsResponse),
  missingIds: Schema.Array(MovieId)
})

const NotFound = Http.apiError(MetadataNotFound, { status: 404, code: Code.NOT_FOUND })

const listFields: Listing.FieldNames = {
  pageSize: "limit",
  pageToken: "pageToken",
  orderBy: "orderBy",
  minRatingsCount: "minRatingsCount",
  nextPageToken: "nextPageToken"
}

/** A query parameter that should be a count: NaN (refused by Listing.parse) unless it is one. */
const count = (value: string | undefined) =>
  value === undefined ? undefined : /^\d{1,15}$/.test(value) ? Number(value) : NaN

const response = ({ dampedRating, metadata, rating }: MovieDetails) => ({
  metadata,
  ratingsCount: rating.count,
  ...Option.match(rating.average, { onNone: () => ({}), onSome: (value) => ({ rating: value }) }),
  ...(dampedRating === undefined ? {} : { dampedRating })
})

export class MovieHttpApi extends HttpApi.make("movie").add(
  HttpApiGroup.make("movie")
    .add(
      HttpApiEndpoint.get("get", "/movie")
        .setUrlParams(Schema.Struct({ id: MovieId }))
        .addSuccess(MovieDetailsResponse)
        .addError(NotFound)
        .addError(Http.ServiceUnavailableError)
        .addError(Http.DeadlineExceededError)
        .addError(Http.InvalidArgumentError)
    )
    .add(
      HttpApiEndpoint.get("list", "/movies")
        .setUrlParams(Schema.Struct({
          limit: Schema.optional(Schema.String),
          pageToken: Schema.optional(Schema.String),
          orderBy: Schema.optional(Schema.String),
          minRatingsCount: Schema.optional(Schema.String)
        }))
        .addSuccess(MoviePageResponse)
        .addError(Http.ServiceUnavailableError)
        .addError(Http.DeadlineExceededError)
        .addError(Http.InvalidArgumentError)
    )
    .add(
      // `::` is the router's escape for a literal colon (a single one starts a path parameter).
      HttpApiEndpoint.post("batchGet", "/movies::batchGet")
        .setPayload(Schema.Struct({ ids: MovieIds }))
        .addSuccess(MovieBatchResponse)
        .addError(Http.ServiceUnavailableError)
        .addError(Http.DeadlineExceededError)
        .addError(Http.InvalidArgumentError)
    )
).annotate(
  // The OpenAPI generator does not know the escape and would document `/movies:{batchGet}`.
  OpenApi.Transform,
  (spec) => {
    const { ["/movies:{batchGet}"]: batchGet, ...paths } = spec.paths as Record<string, unknown>
    return { ...spec, paths: { ...paths, "/movies:batchGet": batchGet } }
  }
) {}

const handlers = HttpApiBuilder.group(MovieHttpApi, "movie", (handlers) =>
  Effect.gen(function*() {
    const movies = yield* MovieService
    return handlers
      .handle("get", ({ urlParams }) => Effect.map(movies.details(urlParams.id), response))
      .handle("list", ({ urlParams }) =>
        Listing.parse({
          pageSize: count(urlParams.limit),
          pageToken: urlParams.pageToken,
          orderBy: urlParams.orderBy,
          minRatingsCount: count(urlParams.minRatingsCount)
        }, listFields).pipe(
          Effect.flatMap(movies.list),
          Effect.map((page) => ({
            movies: page.movies.map(response),
            ...(page.next === undefined ? {} : { nextPageToken: Listing.encodeToken(page.next) })
          }))
        ))
      .handle("batchGet", ({ payload }) =>
        Effect.map(movies.batch(payload.ids), (batch) => ({
          movies: batch.movies.map(response),
          missingIds: batch.missing
        })))
  }))

export const routes = HttpLayerRouter.addHttpApi(MovieHttpApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(handlers)
)
