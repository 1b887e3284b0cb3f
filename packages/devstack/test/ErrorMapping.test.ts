/** Every typed error maps to exactly one gRPC status at each service's edge. */
import { assert, describe, it, layer } from "@effect/vitest"
import { PermissionDenied, RateLimited, Unauthenticated } from "@movieapp/contracts/Auth"
import { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import { RatingNotFound, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as MetadataGrpc from "@movieapp/metadata/edges/MetadataGrpc"
import * as MovieGrpc from "@movieapp/movie/edges/MovieGrpc"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingGrpc from "@movieapp/rating/edges/RatingGrpc"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import * as System from "../src/System.js"

const invalid = new InvalidArgument({ field: "movie_id", reason: "must not be empty" })
const unavailable = new ServiceUnavailable({ service: "rating", reason: "no healthy instance" })
const deadline = new DeadlineExceeded({ operation: "RatingService.GetAggregatedRating" })
const metadataNotFound = new MetadataNotFound({ movieId: MovieId.make("m1") })
const unauthenticated = new Unauthenticated({ reason: "the token has expired" })
const permissionDenied = new PermissionDenied({ reason: "the token lacks the scope metadata:write" })
const rateLimited = new RateLimited({ retryAfterMillis: 250 })
const ratingNotFound = new RatingNotFound({
  recordType: "movie",
  recordId: RecordId.make("m1"),
  userId: UserId.make("u1")
})

/** The refusals of a write, at the two edges that take writes. */
const writeErrors = [
  [unauthenticated, Code.UNAUTHENTICATED],
  [permissionDenied, Code.PERMISSION_DENIED],
  [rateLimited, Code.RESOURCE_EXHAUSTED]
] as const

describe("error mapping", () => {
  it("metadata edge", () => {
    for (
      const [error, code] of [
        [metadataNotFound, Code.NOT_FOUND],
        [invalid, Code.INVALID_ARGUMENT],
        [unavailable, Code.UNAVAILABLE],
        ...writeErrors
      ] as const
    ) {
      const status = MetadataGrpc.toStatus(error)
      assert.strictEqual(status.code, code, error._tag)
      assert.strictEqual(status.details, error.message)
    }
  })

  it("rating edge", () => {
    for (
      const [error, code] of [
        [ratingNotFound, Code.NOT_FOUND],
        [invalid, Code.INVALID_ARGUMENT],
        [unavailable, Code.UNAVAILABLE],
        ...writeErrors
      ] as const
    ) {
      const status = RatingGrpc.toStatus(error)
      assert.strictEqual(status.code, code, error._tag)
      assert.strictEqual(status.details, error.message)
    }
  })

  it("movie edge", () => {
    for (
      const [error, code] of [
        [metadataNotFound, Code.NOT_FOUND],
        [invalid, Code.INVALID_ARGUMENT],
        [unavailable, Code.UNAVAILABLE],
        [deadline, Code.DEADLINE_EXCEEDED]
      ] as const
    ) {
      const status = MovieGrpc.toStatus(error)
      assert.strictEqual(status.code, code, error._tag)
      assert.strictEqual(status.details, error.message)
    }
  })

  it("a rate-limited write tells when to retry, in the trailer gRPC's retry policy reads", () => {
    assert.deepStrictEqual(RatingGrpc.toStatus(rateLimited).trailers, { "grpc-retry-pushback-ms": "250" })
  })

  it("messages say what happened", () => {
    assert.strictEqual(invalid.message, "movie_id: must not be empty")
    assert.strictEqual(metadataNotFound.message, "movie m1 not found")
    assert.strictEqual(ratingNotFound.message, "user u1 has no rating for movie m1")
    assert.strictEqual(unavailable.message, "rating unavailable: no healthy instance")
    assert.strictEqual(deadline.message, "deadline exceeded during RatingService.GetAggregatedRating")
  })

  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })(
    "RatingNotFound on the wire",
    (it) => {
      it.effect("deleting a rating that does not exist: NOT_FOUND over gRPC, 404 over HTTP; an existing one is removed", () =>
        Effect.gen(function*() {
          const ports = yield* RatingServer.Ports
          const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${ports.grpc}`)
          const key = { recordId: "del-1", recordType: "movie", userId: "u1" }
          const u1 = yield* Tokens.user("u1")
          const missing = yield* Effect.flip(Grpc.call(Grpc.method(client, "deleteRating"), key, { metadata: u1 }))
          assert.strictEqual(missing.code, Code.NOT_FOUND)
          assert.strictEqual(missing.details, "user u1 has no rating for movie del-1")
          const http = yield* Effect.promise(() =>
            fetch(`http://127.0.0.1:${ports.http}/rating?id=del-1&type=movie&userId=u1`, {
              method: "DELETE",
              headers: u1
            })
          )
          assert.strictEqual(http.status, 404)
          // The same sentence as gRPC's details.
          assert.deepStrictEqual(yield* Effect.promise(() => http.json()), {
            code: "NOT_FOUND",
            message: "user u1 has no rating for movie del-1"
          })

          yield* Grpc.call(Grpc.method(client, "putRating"), { ...key, ratingValue: 6 }, { metadata: u1 })
          yield* Grpc.call(Grpc.method(client, "deleteRating"), key, { metadata: u1 })
          assert.deepStrictEqual(
            yield* Grpc.call(Grpc.method(client, "getAggregatedRating"), { recordId: "del-1", recordType: "movie" }),
            { ratingValue: undefined, ratingsCount: 0 }
          )
        }).pipe(Effect.scoped))
    }
  )
})
