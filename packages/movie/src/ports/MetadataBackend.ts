/** The metadata service as the gateway needs it. */
import type { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { Metadata, MetadataNotFound, MovieId, TitleCursor } from "@movieapp/contracts/Metadata"
import { Context, type Effect } from "effect"

export type MetadataBackendError = MetadataNotFound | InvalidArgument | ServiceUnavailable | DeadlineExceeded

export class MetadataBackend extends Context.Tag("@movieapp/movie/MetadataBackend")<MetadataBackend, {
  readonly get: (movieId: MovieId) => Effect.Effect<Metadata, MetadataBackendError>
  /** The metadata of the known ids among `movieIds` (at most 100), in one call; order unspecified. */
  readonly getMany: (
    movieIds: ReadonlyArray<MovieId>
  ) => Effect.Effect<ReadonlyArray<Metadata>, Exclude<MetadataBackendError, MetadataNotFound>>
  /** Up to `limit` movies by title, then id (code point order), after `after`. */
  readonly listByTitle: (
    limit: number,
    after: TitleCursor | undefined
  ) => Effect.Effect<ReadonlyArray<Metadata>, Exclude<MetadataBackendError, MetadataNotFound>>
}>() {}
