/** Metadata kept in process memory: for development and tests. */
import type { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import { Effect, Layer, Option } from "effect"
import { MetadataRepository } from "../ports/MetadataRepository.js"

export const make = Effect.sync(() => {
  const movies = new Map<MovieId, Metadata>()
  return MetadataRepository.of({
    get: (id) => Effect.sync(() => Option.fromNullable(movies.get(id))).pipe(Effect.withSpan("MetadataRepository.get")),
    put: (metadata) => Effect.sync(() => void movies.set(metadata.id, metadata)).pipe(Effect.withSpan("MetadataRepository.put"))
  })
})

export const layer: Layer.Layer<MetadataRepository> = Layer.effect(MetadataRepository, make)
