/** Movie metadata: model, errors and the Effect RPC group the gateway calls. */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Authentication, PermissionDenied } from "./Auth.js"
import { InvalidArgument, ServiceUnavailable } from "./Errors.js"
import { batchOf, identifier, ListLimit, MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, text } from "./Fields.js"

export const MovieId = identifier("MovieId")
export type MovieId = typeof MovieId.Type

export class Metadata extends Schema.Class<Metadata>("Metadata")({
  id: MovieId,
  title: text({ min: 1, max: MAX_TITLE_LENGTH }),
  description: text({ min: 0, max: MAX_DESCRIPTION_LENGTH }),
  director: text({ min: 0, max: MAX_TITLE_LENGTH })
}) {}

export class MetadataNotFound extends Schema.TaggedError<MetadataNotFound>()(
  "MetadataNotFound",
  { movieId: MovieId }
) {
  override get message() {
    return `movie ${this.movieId} not found`
  }
}

/**
 * A position in the listing by title: the title and id of the last movie seen.
 * The listing continues after it in (title, id) order, titles compared by code
 * point, so a movie added meanwhile never shifts what comes next.
 */
export const TitleCursor = Schema.Struct({ title: Metadata.fields.title, id: MovieId })
export type TitleCursor = typeof TitleCursor.Type

/** Ids of one batch read ({@link batchOf}). */
export const MovieIds = batchOf(MovieId)

export class MetadataRpcs extends RpcGroup.make(
  Rpc.make("GetMetadata", {
    payload: { movieId: MovieId },
    success: Metadata,
    error: Schema.Union(MetadataNotFound, InvalidArgument, ServiceUnavailable)
  }),
  /** The metadata of every id that has some, in no particular order; unknown ids are left out. */
  Rpc.make("GetMetadataBatch", {
    payload: { movieIds: MovieIds },
    success: Schema.Array(Metadata),
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  }),
  /** Up to `limit` movies in (title, id) order, after `after` when given. */
  Rpc.make("ListMetadataByTitle", {
    payload: { limit: ListLimit, after: Schema.optional(TitleCursor) },
    success: Schema.Array(Metadata),
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  }),
  /** Needs a token with the scope `metadata:write` (see Auth). */
  Rpc.make("PutMetadata", {
    payload: { metadata: Metadata },
    error: Schema.Union(InvalidArgument, ServiceUnavailable, PermissionDenied)
  }).middleware(Authentication)
) {}
