/**
 * The behaviour every MetadataRepository adapter must have. Run against each
 * adapter; the layer is built once per suite, so every test uses its own ids.
 */
import { assert, layer } from "@effect/vitest"
import { compareCodePoints } from "@movieapp/contracts/Fields"
import { Metadata, MovieId, type TitleCursor } from "@movieapp/contracts/Metadata"
import { Effect, FastCheck as fc, type Layer, Option, Runtime } from "effect"
import { MetadataRepository } from "../src/ports/MetadataRepository.js"

const movie = (id: string, title = `Title ${id}`) =>
  new Metadata({ id: MovieId.make(id), title, description: `About ${id}`, director: "A. Director" })

const byTitle = (a: Metadata, b: Metadata) => compareCodePoints(a.title, b.title) || compareCodePoints(a.id, b.id)

/**
 * Every movie whose title starts with `prefix`, paged `size` at a time from the
 * cursor just before the prefix (titles with it sort together), `between` run
 * after each page. Suites share one repository: a prefix keeps a test to its own movies.
 */
const listPrefix = (
  repository: MetadataRepository["Type"],
  prefix: string,
  size: number,
  between: Effect.Effect<void, unknown> = Effect.void
) =>
  Effect.gen(function*() {
    const seen: Array<Metadata> = []
    // The smallest cursor of the prefix: its title with an id before every id.
    let after: TitleCursor = { title: prefix, id: "" as MovieId }
    for (;;) {
      const page = yield* repository.listByTitle(size, Option.some(after))
      const own = page.filter((m) => m.title.startsWith(prefix))
      seen.push(...own)
      if (own.length < page.length || page.length < size) return seen
      after = { title: page.at(-1)!.title, id: page.at(-1)!.id }
      yield* between
    }
  })

// Characters whose orders differ: by UTF-16 unit, U+E000 sorts after an astral character;
// by code point (UTF-8 bytes), before. With PAD SPACE, "a" equals "a " and sorts after "a\t".
const titleUnit = fc.constantFrom("a", "b", " ", "\t", "\uE000", "\uFFFF", "😀", "é")
const titleSuffix = fc.string({ unit: titleUnit, maxLength: 4 })

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

    it.effect("getMany returns the metadata of the known ids in one read and leaves unknown ones out", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        const stored = [movie("many-1"), movie("many-2"), movie("many-3")]
        yield* Effect.forEach(stored, repository.put, { discard: true })
        const found = yield* repository.getMany(
          ["many-3", "many-unknown", "many-1", "many-2", "many-1"].map((id) => MovieId.make(id))
        )
        assert.deepStrictEqual([...found].sort(byTitle), stored)
        assert.deepStrictEqual(yield* repository.getMany([]), [])
        assert.deepStrictEqual(yield* repository.getMany([MovieId.make("many-unknown")]), [])
      }))

    it.effect("listByTitle orders by title then id, both by code point: astral after U+FFFF, trailing spaces and tabs significant", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        const prefix = "order/"
        const titles = ["b", "a", "a ", "a\t", "a\uFFFF", "a😀", "a\uE000", "é", "a"]
        const stored = titles.map((title, i) => movie(`order-${titles.length - i}`, prefix + title))
        yield* Effect.forEach(stored, repository.put, { discard: true })
        const expected = [...stored].sort(byTitle)
        assert.deepStrictEqual(expected.map((m) => m.title.slice(prefix.length)), [
          "a",
          "a",
          "a\t",
          "a ",
          "a\uE000",
          "a\uFFFF",
          "a😀",
          "b",
          "é"
        ])
        for (const size of [1, 2, 4, 100]) {
          assert.deepStrictEqual(yield* listPrefix(repository, prefix, size), expected, `pages of ${size}`)
        }
      }))

    it.effect("listByTitle from the start lists the first titles; a cursor past the end lists nothing", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        yield* repository.put(movie("first-0", "\u0001 first"))
        const [first] = yield* repository.listByTitle(1, Option.none())
        assert.strictEqual(first?.id, "first-0")
        const last = { title: "\u{10FFFF}", id: MovieId.make("z") }
        assert.deepStrictEqual(yield* repository.listByTitle(10, Option.some(last)), [])
      }))

    it.effect("paging by title while movies are added returns every movie that existed throughout exactly once, in order", () =>
      Effect.gen(function*() {
        const repository = yield* MetadataRepository
        const run = Runtime.runPromise(yield* Effect.runtime<never>())
        let round = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.array(titleSuffix, { minLength: 0, maxLength: 20 }),
              fc.array(fc.array(titleSuffix, { maxLength: 3 }), { maxLength: 20 }),
              fc.integer({ min: 1, max: 5 }),
              async (before, added, size) => {
                const prefix = `paging/${round++}/`
                let n = 0
                const make = (suffix: string) => movie(`${prefix}${n++}`, prefix + suffix)
                const existing = before.map(make)
                const inserts = added.map((suffixes) => suffixes.map(make))
                await run(Effect.gen(function*() {
                  yield* Effect.forEach(existing, repository.put, { discard: true })
                  // Between pages, movies land before the cursor, after it and at it.
                  let page = 0
                  const insert = Effect.suspend(() =>
                    Effect.forEach(inserts[page++] ?? [], repository.put, { discard: true })
                  )
                  const listed = yield* listPrefix(repository, prefix, size, insert)
                  const ids = listed.map((m) => m.id)
                  assert.strictEqual(new Set(ids).size, ids.length, `a movie listed twice: ${ids}`)
                  for (const m of existing) assert.include(ids, m.id, `${m.id} (${JSON.stringify(m.title)}) missing`)
                  assert.deepStrictEqual(listed, [...listed].sort(byTitle))
                }))
              }
            ),
            { numRuns: 40 }
          )
        )
      }))
  })
