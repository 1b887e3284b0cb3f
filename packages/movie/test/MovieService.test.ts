/**
 * The gateway's use case against stub ports, in milliseconds: metadata and
 * rating asked concurrently; the metadata answer decides first (an unknown movie
 * is MetadataNotFound even when the rating call failed sooner, and the rating
 * call is interrupted); a movie nobody rated has an empty aggregate; a rating
 * failure fails the call, never passing "no rating" off as the truth. The socket
 * suites (devstack) show the same through every edge.
 */
import { assert, describe, it } from "@effect/vitest"
import { DeadlineExceeded, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Metadata, MetadataNotFound, MovieId, type TitleCursor } from "@movieapp/contracts/Metadata"
import { AggregatedRating, RankedRecord, RecordId, type RecordKey } from "@movieapp/contracts/Rating"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import * as MovieService from "../src/MovieService.js"
import { MetadataBackend, type MetadataBackendError } from "../src/ports/MetadataBackend.js"
import { RatingBackend, type RatingBackendError } from "../src/ports/RatingBackend.js"

const heat = new Metadata({ id: MovieId.make("heat"), title: "Heat", description: "", director: "Michael Mann" })

/** The use case over backends answering with `metadata` and `rating`. */
const withBackends = (
  metadata: (movieId: MovieId) => Effect.Effect<Metadata, MetadataBackendError>,
  rating: (key: RecordKey) => Effect.Effect<AggregatedRating, RatingBackendError>
) =>
  MovieService.layer.pipe(
    Layer.provide(Layer.succeed(
      MetadataBackend,
      MetadataBackend.of({ get: metadata, getMany: unused, listByTitle: unused })
    )),
    Layer.provide(
      Layer.succeed(RatingBackend, RatingBackend.of({ aggregate: rating, aggregates: unused, ranked: unused }))
    )
  )

const unused = () => Effect.dieMessage("not used by this test")

const details = (movieId: string) =>
  Effect.flatMap(MovieService.MovieService, (movies) => movies.details(MovieId.make(movieId)))

describe("MovieService", () => {
  it.effect("a rated movie: its metadata and the aggregate of the movie's record", () =>
    Effect.gen(function*() {
      const asked: Array<RecordKey> = []
      const found = yield* details("heat").pipe(Effect.provide(withBackends(
        () => Effect.succeed(heat),
        (key) => Effect.sync(() => asked.push(key)).pipe(Effect.as(new AggregatedRating({ count: 2, sum: 17 })))
      )))
      assert.deepStrictEqual(found.metadata, heat)
      assert.deepStrictEqual([found.rating.count, found.rating.sum], [2, 17])
      assert.deepStrictEqual(asked, [{ recordType: "movie", recordId: "heat" }])
    }))

  it.effect("a movie nobody rated: the empty aggregate, no average", () =>
    Effect.gen(function*() {
      const found = yield* details("heat").pipe(
        Effect.provide(withBackends(() => Effect.succeed(heat), () => Effect.succeed(AggregatedRating.empty)))
      )
      assert.strictEqual(found.rating.count, 0)
      assert.isTrue(found.rating.average._tag === "None")
    }))

  it.effect("both backends are asked at once: the rating call runs while metadata has not answered", () =>
    Effect.gen(function*() {
      const ratingAsked = yield* Deferred.make<void>()
      const found = yield* details("heat").pipe(Effect.provide(withBackends(
        // Metadata answers only once the rating call has started.
        () => Deferred.await(ratingAsked).pipe(Effect.as(heat)),
        () => Deferred.succeed(ratingAsked, undefined).pipe(Effect.as(AggregatedRating.empty))
      )))
      assert.deepStrictEqual(found.metadata, heat)
    }))

  it.effect("an unknown movie is MetadataNotFound even when the rating call failed sooner", () =>
    Effect.gen(function*() {
      const ratingFailed = yield* Deferred.make<void>()
      const error = yield* details("nope").pipe(
        Effect.provide(withBackends(
          (movieId) =>
            Deferred.await(ratingFailed).pipe(Effect.zipRight(Effect.fail(new MetadataNotFound({ movieId })))),
          () =>
            Deferred.succeed(ratingFailed, undefined).pipe(
              Effect.zipRight(Effect.fail(new ServiceUnavailable({ service: "rating", reason: "down" })))
            )
        )),
        Effect.flip
      )
      assert.instanceOf(error, MetadataNotFound)
      assert.strictEqual(error.message, "movie nope not found")
    }))

  it.effect("an unknown movie ends the call at once: the rating call still in flight is interrupted as the call's fiber ends", () =>
    Effect.gen(function*() {
      const ratingStarted = yield* Deferred.make<void>()
      const ratingInterrupted = yield* Deferred.make<void>()
      // Every edge runs a call in a fiber of its own, as here.
      const call = yield* Effect.fork(
        details("nope").pipe(
          Effect.provide(withBackends(
            (movieId) =>
              Deferred.await(ratingStarted).pipe(Effect.zipRight(Effect.fail(new MetadataNotFound({ movieId })))),
            () =>
              Deferred.succeed(ratingStarted, undefined).pipe(
                Effect.zipRight(Effect.never),
                Effect.onInterrupt(() => Deferred.succeed(ratingInterrupted, undefined))
              )
          ))
        )
      )
      const exit = yield* Fiber.await(call)
      assert.isTrue(Exit.isFailure(exit))
      // Its child, the rating call, is interrupted as the call's fiber ends (a hang here fails the test).
      yield* Deferred.await(ratingInterrupted)
    }))

  it.effect("a rating service that cannot be reached fails the call (ServiceUnavailable), with the metadata found", () =>
    Effect.gen(function*() {
      const error = yield* details("heat").pipe(
        Effect.provide(
          withBackends(
            () => Effect.succeed(heat),
            () => Effect.fail(new ServiceUnavailable({ service: "rating", reason: "no healthy instance" }))
          )
        ),
        Effect.flip
      )
      assert.instanceOf(error, ServiceUnavailable)
      assert.strictEqual(error.message, "rating unavailable: no healthy instance")
    }))

  it.effect("a rating call past its deadline fails the call (DeadlineExceeded)", () =>
    Effect.gen(function*() {
      const error = yield* details("heat").pipe(
        Effect.provide(withBackends(() =>
          Effect.succeed(heat), () =>
          Effect.fail(new DeadlineExceeded({ operation: "RatingService.GetAggregatedRating" })))),
        Effect.flip
      )
      assert.instanceOf(error, DeadlineExceeded)
    }))

  it.effect("a metadata service that cannot be reached fails the call, whatever the rating", () =>
    Effect.gen(function*() {
      const error = yield* details("heat").pipe(
        Effect.provide(
          withBackends(
            () => Effect.fail(new ServiceUnavailable({ service: "metadata", reason: "down" })),
            () => Effect.succeed(AggregatedRating.empty)
          )
        ),
        Effect.flip
      )
      assert.instanceOf(error, ServiceUnavailable)
      assert.strictEqual(error.service, "metadata")
    }))

  describe("batches and listings", () => {
    const movie = (id: string, title: string) =>
      new Metadata({ id: MovieId.make(id), title, description: "", director: "" })
    const catalogue = [movie("c", "Casablanca"), movie("a", "Alien"), movie("b", "Brazil"), movie("d", "Dune")]
    const rated = new Map([["a", new AggregatedRating({ count: 2, sum: 18 })], [
      "d",
      new AggregatedRating({ count: 1, sum: 3 })
    ]])

    /** Backends over `catalogue`, counting their calls; the ranking also holds "ghost", rated but never described. */
    const backends = Effect.gen(function*() {
      const calls: Array<string> = []
      const sorted = [...catalogue].sort((x, y) => x.title.localeCompare(y.title))
      const layer = MovieService.layer.pipe(
        Layer.provide(Layer.succeed(
          MetadataBackend,
          MetadataBackend.of({
            get: unused,
            getMany: (ids) =>
              Effect.sync(() => (calls.push(`getMany ${ids.join(",")}`), catalogue.filter((m) => ids.includes(m.id)))),
            listByTitle: (limit, after) =>
              Effect.sync(() => {
                calls.push(`listByTitle ${limit} ${after?.title ?? "-"}`)
                return sorted.filter((m) => after === undefined || m.title > after.title).slice(0, limit)
              })
          })
        )),
        Layer.provide(Layer.succeed(
          RatingBackend,
          RatingBackend.of({
            aggregate: unused,
            aggregates: ({ recordIds }) =>
              Effect.sync(() => (calls.push(`aggregates ${recordIds.join(",")}`),
                recordIds.map((id) => rated.get(id) ?? AggregatedRating.empty))
              ),
            ranked: ({ after, limit }) =>
              Effect.sync(() => {
                calls.push(`ranked ${limit} ${after?.recordId ?? "-"}`)
                const ranking = [
                  new RankedRecord({ recordId: RecordId.make("a"), rating: rated.get("a")!, score: 6.5 }),
                  new RankedRecord({
                    recordId: RecordId.make("ghost"),
                    rating: new AggregatedRating({ count: 1, sum: 9 }),
                    score: 5.8
                  }),
                  new RankedRecord({ recordId: RecordId.make("d"), rating: rated.get("d")!, score: 5.3 })
                ]
                const from = after === undefined ? 0 : ranking.findIndex((r) => r.recordId === after.recordId) + 1
                return ranking.slice(from, from + limit)
              })
          })
        ))
      )
      return { calls, layer }
    })

    it.effect("a batch makes one call to each backend and answers every id in order, unknown ones apart", () =>
      Effect.gen(function*() {
        const { calls, layer } = yield* backends
        const ids = ["d", "x", "a", "b", "a"].map((id) => MovieId.make(id))
        const batch = yield* Effect.flatMap(MovieService.MovieService, (movies) => movies.batch(ids)).pipe(
          Effect.provide(layer)
        )
        assert.deepStrictEqual(batch.movies.map((m) => [m.metadata.id, m.rating.count]), [
          ["d", 1],
          ["a", 2],
          ["b", 0],
          ["a", 2]
        ])
        assert.deepStrictEqual(batch.missing, [MovieId.make("x")])
        assert.deepStrictEqual([...calls].sort(), ["aggregates d,x,a,b,a", "getMany d,x,a,b,a"])
        const empty = yield* Effect.flatMap(MovieService.MovieService, (movies) => movies.batch([])).pipe(
          Effect.provide(layer)
        )
        assert.deepStrictEqual(empty, { movies: [], missing: [] })
        assert.lengthOf(calls, 2, "an empty batch calls no backend")
      }))

    it.effect("by title: a page and one more asked, the page's aggregates in one call, the next position after its last movie", () =>
      Effect.gen(function*() {
        const { calls, layer } = yield* backends
        const list = (after?: TitleCursor) =>
          Effect.flatMap(MovieService.MovieService, (movies) => movies.list({ _tag: "ByTitle", pageSize: 3, after }))
            .pipe(
              Effect.provide(layer)
            )
        const first = yield* list()
        assert.deepStrictEqual(first.movies.map((m) => [m.metadata.title, m.rating.count]), [["Alien", 2], [
          "Brazil",
          0
        ], [
          "Casablanca",
          0
        ]])
        assert.deepStrictEqual(first.next, { _tag: "ByTitle", after: { title: "Casablanca", id: MovieId.make("c") } })
        const second = yield* list(first.next?._tag === "ByTitle" ? first.next.after : undefined)
        assert.deepStrictEqual(second.movies.map((m) => m.metadata.title), ["Dune"])
        assert.isUndefined(second.next)
        assert.deepStrictEqual(calls, [
          "listByTitle 4 -",
          "aggregates a,b,c",
          "listByTitle 4 Casablanca",
          "aggregates d"
        ])
      }))

    it.effect("by rating: the ranking's page, its metadata in one call, a ranked id nobody described left out", () =>
      Effect.gen(function*() {
        const { calls, layer } = yield* backends
        const page = yield* Effect.flatMap(
          MovieService.MovieService,
          (movies) => movies.list({ _tag: "ByRating", pageSize: 2, minCount: 1, after: undefined })
        ).pipe(Effect.provide(layer))
        assert.deepStrictEqual(page.movies.map((m) => [m.metadata.id, m.dampedRating]), [[MovieId.make("a"), 6.5]])
        assert.deepStrictEqual(page.next, {
          _tag: "ByRating",
          minCount: 1,
          after: { score: 5.8, recordId: RecordId.make("ghost") }
        })
        assert.deepStrictEqual(calls, ["ranked 3 -", "getMany a,ghost"])
      }))
  })
})
