/** The metadata use cases; every edge (gRPC, HTTP, Effect RPC) calls these. */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { type Metadata, MetadataNotFound, type MovieId } from "@movieapp/contracts/Metadata"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Context, Effect, Layer, Option } from "effect"
import { MetadataRepository } from "./ports/MetadataRepository.js"

export class MetadataService extends Context.Tag("@movieapp/metadata/MetadataService")<MetadataService, {
  readonly get: (movieId: MovieId) => Effect.Effect<Metadata, MetadataNotFound | ServiceUnavailable>
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
      put: Effect.fnUntraced(function*(metadata) {
        yield* repository.put(metadata)
      }, span("MetadataService.put"))
    })
  })
)
