/**
 * The gateway's use cases. Details of one movie: metadata and rating, fetched
 * concurrently. An unknown movie fails with MetadataNotFound (and the rating
 * call is interrupted); a movie nobody rated has an empty aggregate; a rating
 * service that cannot be reached within the retry budget fails the call with
 * ServiceUnavailable rather than passing "no rating" off as the truth. Batches
 * and listings make one call to each backend, whatever the number of movies.
 */
import type { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import { type AggregatedRating, type RecordId, RecordId as RecordIdSchema } from "@movieapp/contracts/Rating"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Context, Effect, Fiber, Layer } from "effect"
import type { ListQuery } from "./domain/Listing.js"
import { type MovieBatch, MovieDetails, type MoviePage } from "./domain/MovieDetails.js"
import { MetadataBackend, type MetadataBackendError } from "./ports/MetadataBackend.js"
import { RatingBackend, type RatingBackendError } from "./ports/RatingBackend.js"

type ListError = Exclude<MetadataBackendError, { readonly _tag: "MetadataNotFound" }> | RatingBackendError

export class MovieService extends Context.Tag("@movieapp/movie/MovieService")<MovieService, {
  readonly details: (movieId: MovieId) => Effect.Effect<MovieDetails, MetadataBackendError | RatingBackendError>
  /** The details of up to 100 movies: one call to each backend, concurrently. */
  readonly batch: (movieIds: ReadonlyArray<MovieId>) => Effect.Effect<MovieBatch, ListError>
  /**
   * A page of the catalogue. By title: a page of metadata, then the page's
   * aggregates. By rating: a page of the ranking, then the page's metadata; a
   * ranked id without metadata (rated, never described) is left out, so such a
   * page may hold fewer movies than asked while more follow.
   */
  readonly list: (query: ListQuery) => Effect.Effect<MoviePage, ListError>
}>() {}

// Movie ids and record ids are checked by the same rules (Fields.identifier): no need to check again.
const asRecordIds = (ids: ReadonlyArray<MovieId>) => ids as ReadonlyArray<string> as ReadonlyArray<RecordId>

// Both values were decoded from the backends' answers: validating them again would only cost.
const indexById = (found: ReadonlyArray<Metadata>) => new Map(found.map((m) => [m.id as string, m]))

const details = (metadata: Metadata, rating: AggregatedRating, dampedRating?: number) =>
  new MovieDetails(dampedRating === undefined ? { metadata, rating } : { metadata, rating, dampedRating }, true)

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
        const rating = yield* Effect.fork(
          ratings.aggregate({ recordType: "movie", recordId: RecordIdSchema.make(movieId) })
        )
        const found = yield* metadata.get(movieId)
        // Awaited, not joined: joining also merges the child's fiber refs into this
        // fiber, work this call does not need.
        const aggregate = yield* Effect.flatten(Fiber.await(rating))
        return details(found, aggregate)
      }, span("MovieService.details")),

      batch: Effect.fnUntraced(function*(movieIds) {
        if (movieIds.length === 0) return { movies: [], missing: [] }
        // As in `details`: one fork, the metadata answer first.
        const rating = yield* Effect.fork(ratings.aggregates({ recordType: "movie", recordIds: asRecordIds(movieIds) }))
        const found = yield* metadata.getMany(movieIds)
        const aggregates = yield* Effect.flatten(Fiber.await(rating))
        const byId = indexById(found)
        const movies: Array<MovieDetails> = []
        const missing: Array<MovieId> = []
        movieIds.forEach((id, i) => {
          const m = byId.get(id)
          if (m === undefined) missing.push(id)
          else movies.push(details(m, aggregates[i]!))
        })
        return { movies, missing }
      }, span("MovieService.batch")),

      list: Effect.fnUntraced(function*(query) {
        // One more than the page: whether it comes says whether another page follows.
        if (query._tag === "ByTitle") {
          const listed = yield* metadata.listByTitle(query.pageSize + 1, query.after)
          const page = listed.slice(0, query.pageSize)
          const aggregates = page.length === 0
            ? []
            : yield* ratings.aggregates({ recordType: "movie", recordIds: asRecordIds(page.map((m) => m.id)) })
          const last = page.at(-1)
          return {
            movies: page.map((m, i) => details(m, aggregates[i]!)),
            next: listed.length > page.length && last !== undefined
              ? { _tag: "ByTitle" as const, after: { title: last.title, id: last.id } }
              : undefined
          }
        }
        const ranked = yield* ratings.ranked({
          recordType: "movie",
          minCount: query.minCount,
          limit: query.pageSize + 1,
          ...(query.after === undefined ? {} : { after: query.after })
        })
        const page = ranked.slice(0, query.pageSize)
        const found = page.length === 0
          ? []
          : yield* metadata.getMany(page.map((r) => r.recordId as string as MovieId))
        const byId = indexById(found)
        const movies: Array<MovieDetails> = []
        for (const record of page) {
          const m = byId.get(record.recordId)
          if (m !== undefined) movies.push(details(m, record.rating, record.score))
        }
        const last = page.at(-1)
        return {
          movies,
          next: ranked.length > page.length && last !== undefined
            ? {
              _tag: "ByRating" as const,
              minCount: query.minCount,
              after: { score: last.score, recordId: last.recordId }
            }
            : undefined
        }
      }, span("MovieService.list"))
    })
  })
)
