/** The metadata use cases; every edge (gRPC, HTTP, Effect RPC) calls these. */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { type Metadata, MetadataNotFound, type MovieId, type TitleCursor } from "@movieapp/contracts/Metadata"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Context, Effect, Layer, Option } from "effect"
import { MetadataRepository } from "./ports/MetadataRepository.js"

export class MetadataService extends Context.Tag("@movieapp/metadata/MetadataService")<MetadataService, {
  readonly get: (movieId: MovieId) => Effect.Effect<Metadata, MetadataNotFound | ServiceUnavailable>
  /** The metadata of the ids that have some (see MetadataRepository.getMany). */
  readonly getMany: (ids: ReadonlyArray<MovieId>) => Effect.Effect<ReadonlyArray<Metadata>, ServiceUnavailable>
  /** A page of the catalogue by title (see MetadataRepository.listByTitle). */
  readonly listByTitle: (
    limit: number,
    after: Option.Option<TitleCursor>
  ) => Effect.Effect<ReadonlyArray<Metadata>, ServiceUnavailable>
  readonly put: (metadata: Metadata) => Effect.Effect<void, ServiceUnavailable>
}>() {}

export const layer = Layer.effect(
  MetadataService,
  Effect.gen(function*() {
    const repository = yield* MetadataRepository
    const span = yield* Telemetry.span
    return MetadataService.of({
      get: Effect.fnUntraced(function*(movieId) {
        const found = yield* repository.get(movieId)
        return yield* Option.match(found, {
          onNone: () => new MetadataNotFound({ movieId }),
          onSome: Effect.succeed
        })
      }, span("MetadataService.get")),
      getMany: Effect.fnUntraced(function*(ids) {
        return yield* repository.getMany(ids)
      }, span("MetadataService.getMany")),
      listByTitle: Effect.fnUntraced(function*(limit, after) {
        return yield* repository.listByTitle(limit, after)
      }, span("MetadataService.listByTitle")),
      put: Effect.fnUntraced(function*(metadata) {
        yield* repository.put(metadata)
      }, span("MetadataService.put"))
    })
  })
)
