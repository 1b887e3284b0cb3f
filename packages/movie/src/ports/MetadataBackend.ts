/** The metadata service as the gateway needs it. */
import type { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { Metadata, MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import { Context, type Effect } from "effect"

export type MetadataBackendError = MetadataNotFound | InvalidArgument | ServiceUnavailable | DeadlineExceeded

export class MetadataBackend extends Context.Tag("@movieapp/movie/MetadataBackend")<MetadataBackend, {
  readonly get: (movieId: MovieId) => Effect.Effect<Metadata, MetadataBackendError>
}>() {}
