/** Storage port of the metadata service. Infrastructure failures surface as ServiceUnavailable. */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { Metadata, MovieId, TitleCursor } from "@movieapp/contracts/Metadata"
import { Context, type Effect, type Option } from "effect"

export class MetadataRepository extends Context.Tag("@movieapp/metadata/MetadataRepository")<MetadataRepository, {
  readonly get: (id: MovieId) => Effect.Effect<Option.Option<Metadata>, ServiceUnavailable>
  /** The metadata of each id that has some, in one read; unknown ids are left out, order unspecified. */
  readonly getMany: (ids: ReadonlyArray<MovieId>) => Effect.Effect<ReadonlyArray<Metadata>, ServiceUnavailable>
  /**
   * Up to `limit` movies ordered by title, then id, both compared by code point
   * (UTF-8 byte order), starting after `after`. Keyset paging: a movie added or
   * removed meanwhile never makes another one repeat or go missing.
   */
  readonly listByTitle: (
    limit: number,
    after: Option.Option<TitleCursor>
  ) => Effect.Effect<ReadonlyArray<Metadata>, ServiceUnavailable>
  /** Creates or replaces the metadata of `metadata.id`. */
  readonly put: (metadata: Metadata) => Effect.Effect<void, ServiceUnavailable>
}>() {}
