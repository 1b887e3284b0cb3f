/**
 * The behaviour every MetadataRepository adapter must have. Run against each
 * adapter; the layer is built once per suite, so every test uses its own ids.
 */
import { assert, layer } from "@effect/vitest"
import { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import { Effect, type Layer, Option } from "effect"
import { MetadataRepository } from "../src/ports/MetadataRepository.js"

const movie = (id: string, title = `Title ${id}`) =>
  new Metadata({ id: MovieId.make(id), title, description: `About ${id}`, director: "A. Director" })

export const metadataRepositoryContract = (name: string, adapter: Layer.Layer<MetadataRepository, unknown>) =>
  layer(adapter, { timeout: "60 seconds" })(`MetadataRepository contract: ${name}`, (it) => {
    it.effect("get of an unknown id is None", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        assert.isTrue(Option.isNone(yield* repository.get(MovieId.make("contract-unknown"))))
      }))

    it.effect("put then get returns the stored metadata", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        const stored = movie("contract-1")
        yield* repository.put(stored)
        assert.deepStrictEqual(yield* repository.get(stored.id), Option.some(stored))
      }))

    it.effect("put replaces the previous metadata of the same id", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        yield* repository.put(movie("contract-2", "First"))
        yield* repository.put(movie("contract-2", "Second"))
        const found = yield* repository.get(MovieId.make("contract-2"))
        assert.strictEqual(Option.getOrThrow(found).title, "Second")
      }))

    it.effect("stores text at the maximum lengths unchanged, including non-ASCII", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        const stored = new Metadata({
          id: MovieId.make("é".repeat(128)),
          title: "あ".repeat(256),
          description: "d".repeat(4096),
          director: "Ö".repeat(256)
        })
        yield* repository.put(stored)
        assert.deepStrictEqual(yield* repository.get(stored.id), Option.some(stored))
      }))
  })
