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
import { Metadata, MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import { AggregatedRating, type RecordKey } from "@movieapp/contracts/Rating"
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
    Layer.provide(Layer.succeed(MetadataBackend, MetadataBackend.of({ get: metadata }))),
    Layer.provide(Layer.succeed(RatingBackend, RatingBackend.of({ aggregate: rating })))
  )

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
})
