/** Metadata kept in process memory: for development and tests. */
import { compareCodePoints } from "@movieapp/contracts/Fields"
import type { Metadata, MovieId, TitleCursor } from "@movieapp/contracts/Metadata"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer, Option } from "effect"
import { MetadataRepository } from "../ports/MetadataRepository.js"

const byTitle = (a: TitleCursor, b: TitleCursor) => compareCodePoints(a.title, b.title) || compareCodePoints(a.id, b.id)

export const make = Effect.map(Telemetry.span, (span) => {
  const movies = new Map<MovieId, Metadata>()
  // Sorted again only when a write changed the catalogue since the last listing.
  let sorted: Array<Metadata> | undefined
  const spanGet = span("MetadataRepository.get")
  const spanGetMany = span("MetadataRepository.getMany")
  const spanList = span("MetadataRepository.listByTitle")
  const spanPut = span("MetadataRepository.put")

  const listByTitle = (limit: number, after: Option.Option<TitleCursor>) => {
    sorted ??= globalThis.Array.from(movies.values()).sort(byTitle)
    const all = sorted
    // The first movie after the cursor, by binary search.
    let low = 0
    let high = all.length
    if (Option.isSome(after)) {
      while (low < high) {
        const middle = (low + high) >>> 1
        if (byTitle(all[middle]!, after.value) <= 0) low = middle + 1
        else high = middle
      }
    }
    return all.slice(low, low + limit)
  }

  return MetadataRepository.of({
    get: (id) => spanGet(Effect.sync(() => Option.fromNullable(movies.get(id)))),
    getMany: (ids) =>
      spanGetMany(Effect.sync(() => {
        const found = new Map<MovieId, Metadata>()
        for (const id of ids) {
          const metadata = movies.get(id)
          if (metadata !== undefined) found.set(id, metadata)
        }
        return globalThis.Array.from(found.values())
      })),
    listByTitle: (limit, after) => spanList(Effect.sync(() => listByTitle(limit, after))),
    put: (metadata) =>
      spanPut(Effect.sync(() => {
        movies.set(metadata.id, metadata)
        sorted = undefined
      }))
  })
})

export const layer: Layer.Layer<MetadataRepository> = Layer.effect(MetadataRepository, make)
