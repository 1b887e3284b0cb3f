/** Storage port of the metadata service. Infrastructure failures surface as ServiceUnavailable. */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import { Context, type Effect, type Option } from "effect"

export class MetadataRepository extends Context.Tag("@movieapp/metadata/MetadataRepository")<MetadataRepository, {
  readonly get: (id: MovieId) => Effect.Effect<Option.Option<Metadata>, ServiceUnavailable>
  /** Creates or replaces the metadata of `metadata.id`. */
  readonly put: (metadata: Metadata) => Effect.Effect<void, ServiceUnavailable>
}>() {}
