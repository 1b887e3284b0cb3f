/** The metadata use cases; every edge (gRPC, HTTP, Effect RPC) calls these. */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { type Metadata, MetadataNotFound, type MovieId } from "@movieapp/contracts/Metadata"
import { Context, Effect, Layer, Option } from "effect"
import { MetadataRepository } from "./ports/MetadataRepository.js"

export class MetadataService extends Context.Tag("@movieapp/metadata/MetadataService")<MetadataService, {
  readonly get: (movieId: MovieId) => Effect.Effect<Metadata, MetadataNotFound | ServiceUnavailable>
  readonly put: (metadata: Metadata) => Effect.Effect<void, ServiceUnavailable>
}>() {}

export const layer = Layer.effect(
  MetadataService,
  Effect.gen(function* () {
    const repository = yield* MetadataRepository
    return MetadataService.of({
      get: Effect.fn("MetadataService.get")(function* (movieId) {
        const found = yield* repository.get(movieId)
        return yield* Option.match(found, {
          onNone: () => new MetadataNotFound({ movieId }),
          onSome: Effect.succeed
        })
      }),
      put: Effect.fn("MetadataService.put")(function* (metadata) {
        yield* repository.put(metadata)
      })
    })
  })
)
