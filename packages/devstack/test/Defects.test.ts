/**
 * A bug (a defect) at any edge is logged at ERROR with its cause and never shown
 * to the caller: gRPC INTERNAL "internal error", HTTP 500 saying the same, Effect
 * RPC "internal error". The rating service's storage here has a bug in reading
 * aggregates; every edge that reads one meets it, over real sockets.
 */
import { assert, describe, layer } from "@effect/vitest"
import { RatingRpcs, RecordId } from "@movieapp/contracts/Rating"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingEventSourceInProcess from "@movieapp/rating/adapters/RatingEventSourceInProcess"
import * as RatingRepositoryMemory from "@movieapp/rating/adapters/RatingRepositoryMemory"
import { RatingRepository } from "@movieapp/rating/ports/RatingRepository"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Cause, Effect, Exit, Layer, Logger } from "effect"
import * as System from "../src/System.js"

const INTERNAL = 13
const SECRET = "secret detail of a bug"

/** The memory repository, with a bug in reading aggregates. */
const BuggyRepository = Layer.effect(
  RatingRepository,
  Effect.map(
    RatingRepositoryMemory.make,
    (memory) => RatingRepository.of({ ...memory, aggregate: () => Effect.die(new Error(SECRET)) })
  )
)

/** Every ERROR line the system logs, its message and its cause, kept here rather than printed: they are expected. */
const errors: Array<{ readonly message: unknown; readonly cause: string }> = []
const recordErrors = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ cause, logLevel, message }) => {
    if (logLevel._tag === "Error") {
      errors.push({ message: Array.isArray(message) ? message[0] : message, cause: String(cause) })
    }
  })
)

/** The ERROR lines logged while `effect` ran. */
const loggedDuring = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const from = errors.length
    const result = yield* effect
    return { result, logged: errors.slice(from) }
  })

const SystemTest = System.layerTest({ ratingAdapters: Layer.merge(BuggyRepository, RatingEventSourceInProcess.layer) })
  .pipe(
    Layer.provide(recordErrors)
  )

describe("defects", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("at the edges", (it) => {
    it.scoped("gRPC: INTERNAL \"internal error\"; logged at ERROR with the cause", () =>
      Effect.gen(function*() {
        const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${(yield* RatingServer.Ports).grpc}`)
        const { logged, result } = yield* loggedDuring(
          Effect.flip(Grpc.call(Grpc.method(client, "getAggregatedRating"), { recordId: "m", recordType: "movie" }))
        )
        assert.strictEqual(result.code, INTERNAL)
        assert.strictEqual(result.details, "internal error")
        assert.isTrue(
          logged.some((line) => line.message === "gRPC handler failed" && line.cause.includes(SECRET)),
          JSON.stringify(logged)
        )
      }))

    it.effect("HTTP: 500 \"internal error\", no details; logged at ERROR with the cause", () =>
      Effect.gen(function*() {
        const { http } = yield* RatingServer.Ports
        const { logged, result } = yield* loggedDuring(Effect.promise(async () => {
          const response = await fetch(`http://127.0.0.1:${http}/rating?id=m&type=movie`)
          return { status: response.status, body: await response.text() }
        }))
        assert.deepStrictEqual(result, {
          status: 500,
          body: JSON.stringify({ code: "INTERNAL", message: "internal error" })
        })
        assert.isTrue(
          logged.some((line) => line.message === "HTTP request failed on a bug" && line.cause.includes(SECRET)),
          JSON.stringify(logged)
        )
      }))

    it.effect("Effect RPC: the caller gets \"internal error\" only; logged at ERROR with the cause", () =>
      Effect.gen(function*() {
        const { rpc } = yield* RatingServer.Ports
        const client = yield* RpcTransport.makeClient(RatingRpcs, { host: "127.0.0.1", port: rpc! })
        const { logged, result } = yield* loggedDuring(
          Effect.exit(client.GetAggregatedRating({ recordType: "movie", recordId: RecordId.make("m") }))
        )
        assert.isTrue(Exit.isFailure(result) && Cause.isDie(result.cause))
        const told = Exit.isFailure(result) ? String(Cause.squash(result.cause)) : ""
        assert.include(told, "internal error")
        assert.notInclude(told, SECRET)
        assert.isTrue(
          logged.some((line) => line.message === "Effect RPC handler failed" && line.cause.includes(SECRET)),
          JSON.stringify(logged)
        )
      }).pipe(Effect.scoped))

    it.scoped("through the gateway: INTERNAL \"internal error\", with no detail of the backend's bug", () =>
      Effect.gen(function*() {
        const metadata = yield* Grpc.client(
          v1Metadata.MetadataServiceClient,
          `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
        )
        yield* Grpc.call(Grpc.method(metadata, "putMetadata"), {
          metadata: { id: "d1", title: "T", description: "", director: "" }
        }, { metadata: yield* Tokens.editor })
        const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)
        const error = yield* Effect.flip(Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: "d1" }))
        assert.strictEqual(error.code, INTERNAL, error.details)
        assert.strictEqual(error.details, "internal error")
      }))
  })
})
