/** Metadata kept in process memory: for development and tests. */
import type { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer, Option } from "effect"
import { MetadataRepository } from "../ports/MetadataRepository.js"

export const make = Effect.map(Telemetry.span, (span) => {
  const movies = new Map<MovieId, Metadata>()
  const spanGet = span("MetadataRepository.get")
  const spanPut = span("MetadataRepository.put")
  return MetadataRepository.of({
    get: (id) => spanGet(Effect.sync(() => Option.fromNullable(movies.get(id)))),
    put: (metadata) => spanPut(Effect.sync(() => void movies.set(metadata.id, metadata)))
  })
})

export const layer: Layer.Layer<MetadataRepository> = Layer.effect(MetadataRepository, make)
