/**
 * What a caller of the gateway gets when things go wrong behind it, through real
 * servers and sockets. The only double is a metadata repository that can be made
 * slow or briefly unavailable (ControlledMetadataRepository below).
 */
import { assert, describe, layer } from "@effect/vitest"
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Metadata, type MovieId } from "@movieapp/contracts/Metadata"
import * as MetadataRepositoryMemory from "@movieapp/metadata/adapters/MetadataRepositoryMemory"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import { MetadataRepository } from "@movieapp/metadata/ports/MetadataRepository"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Readiness from "@movieapp/platform/Readiness"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as RatingEventSourceInProcess from "@movieapp/rating/adapters/RatingEventSourceInProcess"
import * as RatingRepositoryMemory from "@movieapp/rating/adapters/RatingRepositoryMemory"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Logger, LogLevel, Ref } from "effect"

const DEADLINE_EXCEEDED = 4
const UNAVAILABLE = 14

/**
 * Test double of the metadata repository port: the memory adapter, except that
 * `block` makes reads of one id hang until interrupted (reporting start and
 * interruption), and `failNext` makes the next reads fail as unavailable.
 */
interface SlowRead {
  readonly started: Deferred.Deferred<void>
  readonly interrupted: Deferred.Deferred<void>
}

class Controls extends Context.Tag("test/ControlledMetadataRepository")<Controls, {
  /** Fresh signals for the next slow read. */
  readonly armSlowRead: Effect.Effect<SlowRead>
  readonly failuresLeft: Ref.Ref<number>
  readonly reads: Ref.Ref<number>
}>() {}

const SLOW: MovieId = "slow-movie" as MovieId

const ControlledMetadataRepository = Layer.effectContext(
  Effect.gen(function*() {
    const memory = yield* MetadataRepositoryMemory.make
    const slowRead = yield* Ref.make<SlowRead>({
      started: yield* Deferred.make<void>(),
      interrupted: yield* Deferred.make<void>()
    })
    const controls = {
      armSlowRead: Effect.gen(function*() {
        const signals = { started: yield* Deferred.make<void>(), interrupted: yield* Deferred.make<void>() }
        yield* Ref.set(slowRead, signals)
        return signals
      }),
      failuresLeft: yield* Ref.make(0),
      reads: yield* Ref.make(0)
    }
    const repository = MetadataRepository.of({
      ...memory,
      get: (id) =>
        Effect.gen(function*() {
          yield* Ref.update(controls.reads, (n) => n + 1)
          if (id === SLOW) {
            const signals = yield* Ref.get(slowRead)
            yield* Deferred.succeed(signals.started, undefined)
            return yield* Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(signals.interrupted, undefined)))
          }
          const fail = yield* Ref.modify(controls.failuresLeft, (n) => [n > 0, Math.max(0, n - 1)] as const)
          if (fail) return yield* new ServiceUnavailable({ service: "metadata storage", reason: "injected failure" })
          return yield* memory.get(id)
        })
    })
    return Context.make(MetadataRepository, repository).pipe(Context.add(Controls, controls))
  })
)

const ephemeral = (host: string) => ({
  host,
  grpcPort: 0,
  httpPort: 0,
  advertiseHost: host,
  shutdownTimeout: Duration.seconds(5)
})
const backends = { timeout: Duration.seconds(1), retries: 3, backoff: Duration.millis(10) }

const Metadata_ = MetadataServer.layer(ephemeral("127.0.0.1")).pipe(Layer.provideMerge(ControlledMetadataRepository))
const Rating_ = RatingServer.layer(ephemeral("127.0.0.1")).pipe(
  Layer.provide([RatingRepositoryMemory.layer, RatingEventSourceInProcess.layer])
)
const Movie_ = MovieServer.layer({ server: ephemeral("127.0.0.1"), backends })
const quiet = Layer.provide(Logger.minimumLogLevel(LogLevel.Error))

const seed = Effect.gen(function*() {
  const repository = yield* MetadataRepository
  yield* repository.put(
    new Metadata({ id: "heat" as MovieId, title: "Heat", description: "", director: "Michael Mann" })
  )
})

const details = (movieId: string, deadlineMs?: number) =>
  Effect.gen(function*() {
    const { grpc } = yield* MovieServer.Ports
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${grpc}`)
    return yield* Grpc.call(
      Grpc.method(client, "getMovieDetails"),
      { movieId },
      deadlineMs === undefined ? {} : { deadlineMs }
    )
  }).pipe(Effect.scoped)

describe("failures behind the gateway", () => {
  layer(
    Layer.mergeAll(Metadata_, Rating_, Movie_).pipe(
      Layer.provide([DiscoveryMemory.layer(), Readiness.layer, Tokens.layerWriteAccess]),
      quiet
    ),
    {
      excludeTestServices: true,
      timeout: "60 seconds"
    }
  )("all services up", (it) => {
    it.effect("the caller's deadline interrupts the metadata service's work", () =>
      Effect.gen(function*() {
        const slow = yield* (yield* Controls).armSlowRead
        const error = yield* Effect.flip(details(SLOW, 300))
        assert.strictEqual(error.code, DEADLINE_EXCEEDED)
        assert.isTrue(yield* Deferred.isDone(slow.started))
        // Completes only if the hanging repository read was interrupted; the time limit turns a hang into a failure.
        yield* Deferred.await(slow.interrupted).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "backend work was not interrupted" })
        )
      }))

    it.effect("a caller that cancels interrupts the work behind the call", () =>
      Effect.gen(function*() {
        const slow = yield* (yield* Controls).armSlowRead
        const call = yield* Effect.fork(details(SLOW))
        yield* Deferred.await(slow.started)
        assert.isFalse(yield* Deferred.isDone(slow.interrupted))
        yield* Fiber.interrupt(call)
        yield* Deferred.await(slow.interrupted).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "backend work was not interrupted" })
        )
      }))

    it.effect("over HTTP, a backend slower than the gateway's own timeout is 504 and its work is interrupted", () =>
      Effect.gen(function*() {
        const slow = yield* (yield* Controls).armSlowRead
        const { http } = yield* MovieServer.Ports
        const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${http}/movie?id=${SLOW}`))
        assert.strictEqual(response.status, 504)
        assert.deepStrictEqual(yield* Effect.promise(() => response.json()), {
          code: "DEADLINE_EXCEEDED",
          message: "deadline exceeded during MetadataService.GetMetadata"
        })
        yield* Deferred.await(slow.interrupted).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "backend work was not interrupted" })
        )
      }))

    it.effect("a briefly unavailable metadata service is retried: the caller sees success", () =>
      Effect.gen(function*() {
        yield* seed
        const controls = yield* Controls
        yield* Ref.set(controls.reads, 0)
        yield* Ref.set(controls.failuresLeft, 2)
        const answer = yield* details("heat")
        assert.strictEqual(answer.movieDetails?.metadata?.title, "Heat")
        assert.strictEqual(yield* Ref.get(controls.reads), 3)
      }))

    it.effect("an unavailable metadata service beyond the retry budget is UNAVAILABLE", () =>
      Effect.gen(function*() {
        yield* seed
        const controls = yield* Controls
        yield* Ref.set(controls.reads, 0)
        yield* Ref.set(controls.failuresLeft, 100)
        const error = yield* Effect.flip(details("heat"))
        yield* Ref.set(controls.failuresLeft, 0)
        assert.strictEqual(error.code, UNAVAILABLE)
        assert.include(error.details, "metadata storage unavailable: injected failure")
        assert.strictEqual(yield* Ref.get(controls.reads), 1 + backends.retries)
      }))
  })

  // No retries: the rating failure is immediate, so an unknown movie must still win over it.
  const MovieNoRetries = MovieServer.layer({ server: ephemeral("127.0.0.1"), backends: { ...backends, retries: 0 } })
  layer(
    Layer.mergeAll(Metadata_, MovieNoRetries).pipe(
      Layer.provide([DiscoveryMemory.layer(), Readiness.layer, Tokens.layerWriteAccess]),
      quiet
    ),
    {
      excludeTestServices: true,
      timeout: "60 seconds"
    }
  )("rating service down", (it) => {
    it.effect("GetMovieDetails fails with UNAVAILABLE naming the rating service, over gRPC and HTTP", () =>
      Effect.gen(function*() {
        yield* seed
        const error = yield* Effect.flip(details("heat"))
        assert.strictEqual(error.code, UNAVAILABLE)
        assert.strictEqual(error.details, "rating unavailable: no healthy instance")
        const { http } = yield* MovieServer.Ports
        const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${http}/movie?id=heat`))
        assert.strictEqual(response.status, 503)
        assert.deepStrictEqual(yield* Effect.promise(() => response.json()), {
          code: "UNAVAILABLE",
          message: "rating unavailable: no healthy instance"
        })
      }))

    it.effect("an unknown movie is still NOT_FOUND (404): the metadata answer decides", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(details("no-such-movie"))
        assert.strictEqual(error.code, 5)
        assert.strictEqual(error.details, "movie no-such-movie not found")
        const { http } = yield* MovieServer.Ports
        const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${http}/movie?id=no-such-movie`))
        assert.strictEqual(response.status, 404)
        assert.deepStrictEqual(yield* Effect.promise(() => response.json()), {
          code: "NOT_FOUND",
          message: "movie no-such-movie not found"
        })
      }))
  })
})
