/** Movie metadata: model, errors and the Effect RPC group the gateway calls. */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { InvalidArgument, ServiceUnavailable } from "./Errors.js"
import { identifier, MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, text } from "./Fields.js"

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

export class MetadataRpcs extends RpcGroup.make(
  Rpc.make("GetMetadata", {
    payload: { movieId: MovieId },
    success: Metadata,
    error: Schema.Union(MetadataNotFound, InvalidArgument, ServiceUnavailable)
  }),
  Rpc.make("PutMetadata", {
    payload: { metadata: Metadata },
    error: Schema.Union(InvalidArgument, ServiceUnavailable)
  })
) {}
