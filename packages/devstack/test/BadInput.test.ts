/**
 * Bad input on every endpoint gets INVALID_ARGUMENT (gRPC) or 400 (HTTP) naming
 * the field and the reason, and stores nothing.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import { Effect } from "effect"
import * as System from "../src/System.js"

const SystemTest = System.layerTest()

const INVALID_ARGUMENT = 3
const NOT_FOUND = 5
const long = (n: number) => "x".repeat(n)
const movie = (overrides: Record<string, unknown>) => ({ id: "m", title: "T", description: "", director: "", ...overrides })

const expectInvalid = <A>(call: Effect.Effect<A, { code: number; details: string }>, details: string) =>
  Effect.flip(call).pipe(Effect.map((error) => {
    assert.strictEqual(error.code, INVALID_ARGUMENT, error.details)
    assert.strictEqual(error.details, details)
  }))

interface HttpAnswer {
  readonly status: number
  readonly body: any
}
const http = (port: number, method: string, path: string, body?: string): Effect.Effect<HttpAnswer> =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
    })
    const text = await response.text()
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
  })

/** A 400 whose body names `field` (HttpApi decode issues or our InvalidArgument). */
const assertBadRequest = (answer: HttpAnswer, field: string) => {
  assert.strictEqual(answer.status, 400, JSON.stringify(answer.body))
  const named = answer.body?._tag === "InvalidArgument"
    ? answer.body.field
    : String(answer.body?.issues?.[0]?.path?.join("."))
  assert.strictEqual(named, field, JSON.stringify(answer.body))
}

describe("bad input", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("gRPC", (it) => {
    for (const api of ["movieapp.v1", "original"] as const) {
      const clients = api === "movieapp.v1"
        ? { Metadata: v1Metadata.MetadataServiceClient, Rating: v1Rating.RatingServiceClient, Movie: v1Movie.MovieServiceClient }
        // Same request shapes: the original clients are driven through the v1 typings.
        : {
          Metadata: legacy.MetadataServiceClient as unknown as typeof v1Metadata.MetadataServiceClient,
          Rating: legacy.RatingServiceClient as unknown as typeof v1Rating.RatingServiceClient,
          Movie: legacy.MovieServiceClient as unknown as typeof v1Movie.MovieServiceClient
        }

      it.scoped(`${api} MetadataService: field named, nothing stored`, () =>
        Effect.gen(function* () {
          const client = yield* Grpc.client(clients.Metadata, `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`)
          const get = Grpc.method(client, "getMetadata")
          const put = Grpc.method(client, "putMetadata")
          yield* expectInvalid(Grpc.call(get, { movieId: "" }), "movie_id: must not be empty")
          yield* expectInvalid(Grpc.call(get, { movieId: long(129) }), "movie_id: must be at most 128 characters")
          yield* expectInvalid(Grpc.call(get, { movieId: " padded" }), "movie_id: must not start or end with whitespace")
          yield* expectInvalid(Grpc.call(put, {} as v1Metadata.PutMetadataRequest), "metadata: is required")
          const id = `bad-${api}`
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id: "" }) }), "metadata.id: must not be empty")
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id, title: "" }) }), "metadata.title: must not be empty")
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id, title: long(257) }) }), "metadata.title: must be at most 256 characters")
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id, description: long(4097) }) }), "metadata.description: must be at most 4096 characters")
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id, director: long(257) }) }), "metadata.director: must be at most 256 characters")
          const stored = yield* Effect.flip(Grpc.call(get, { movieId: id }))
          assert.strictEqual(stored.code, NOT_FOUND)
        }))

      it.scoped(`${api} RatingService: field named, nothing stored`, () =>
        Effect.gen(function* () {
          const client = yield* Grpc.client(clients.Rating, `127.0.0.1:${(yield* RatingServer.Ports).grpc}`)
          const put = Grpc.method(client, "putRating")
          const get = Grpc.method(client, "getAggregatedRating")
          const recordId = `bad-${api}`
          const rating = (overrides: Record<string, unknown>) =>
            ({ recordId, recordType: "movie", userId: "u1", ratingValue: 5, ...overrides }) as v1Rating.PutRatingRequest
          const outOfRange = "rating_value: must be an integer from 1 to 10"
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: 0 })), outOfRange)
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: 11 })), outOfRange)
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: -3 })), outOfRange)
          yield* expectInvalid(Grpc.call(put, rating({ recordType: "book" })), `record_type: must be one of "movie", "tv"`)
          yield* expectInvalid(Grpc.call(put, rating({ recordType: "" })), `record_type: must be one of "movie", "tv"`)
          yield* expectInvalid(Grpc.call(put, rating({ userId: "" })), "user_id: must not be empty")
          yield* expectInvalid(Grpc.call(put, rating({ recordId: "" })), "record_id: must not be empty")
          yield* expectInvalid(Grpc.call(put, rating({ userId: long(129) })), "user_id: must be at most 128 characters")
          yield* expectInvalid(Grpc.call(get, { recordId: "", recordType: "movie" }), "record_id: must not be empty")
          yield* expectInvalid(Grpc.call(get, { recordId: recordId, recordType: "book" }), `record_type: must be one of "movie", "tv"`)
          if (api === "movieapp.v1") {
            yield* expectInvalid(Grpc.call(Grpc.method(client, "deleteRating"), { recordId, recordType: "movie", userId: "" }), "user_id: must not be empty")
            const after = yield* Grpc.call(get, { recordId, recordType: "movie" })
            assert.deepStrictEqual(after, { ratingValue: undefined, ratingsCount: 0 })
          } else {
            const after = yield* Effect.flip(Grpc.call(get, { recordId, recordType: "movie" }))
            assert.strictEqual(after.code, NOT_FOUND)
          }
        }))

      it.scoped(`${api} MovieService: field named`, () =>
        Effect.gen(function* () {
          const client = yield* Grpc.client(clients.Movie, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)
          yield* expectInvalid(Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: "" }), "movie_id: must not be empty")
          yield* expectInvalid(Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: long(200) }), "movie_id: must be at most 128 characters")
        }))
    }
  })

  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("HTTP", (it) => {
    it.effect("metadata endpoints: 400 naming the field, nothing stored", () =>
      Effect.gen(function* () {
        const { http: port } = yield* MetadataServer.Ports
        assertBadRequest(yield* http(port, "GET", "/metadata?id="), "id")
        assertBadRequest(yield* http(port, "GET", "/metadata"), "id")
        assertBadRequest(yield* http(port, "PUT", "/metadata", "{not json"), "body")
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify(movie({ id: "h1", title: "" }))), "title")
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify(movie({ id: "h1", description: long(4097) }))), "description")
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify({ id: "h1" })), "title")
        assert.strictEqual((yield* http(port, "GET", "/metadata?id=h1")).status, 404)
      }))

    it.effect("rating endpoints: 400 naming the field, nothing stored", () =>
      Effect.gen(function* () {
        const { http: port } = yield* RatingServer.Ports
        const rating = (overrides: Record<string, unknown>) =>
          JSON.stringify({ recordId: "h2", recordType: "movie", userId: "u", value: 5, ...overrides })
        assertBadRequest(yield* http(port, "GET", "/rating?id=&type=movie"), "id")
        assertBadRequest(yield* http(port, "GET", "/rating?id=h2&type=book"), "type")
        assertBadRequest(yield* http(port, "PUT", "/rating", "[1,2"), "body")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: 11 })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: 0 })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: 2.5 })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: "5" })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ recordType: "book" })), "recordType")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ userId: long(129) })), "userId")
        assertBadRequest(yield* http(port, "DELETE", "/rating?id=h2&type=movie"), "userId")
        const after = yield* http(port, "GET", "/rating?id=h2&type=movie")
        assert.deepStrictEqual(after, { status: 200, body: { recordType: "movie", recordId: "h2", ratingsCount: 0 } })
      }))

    it.effect("movie endpoint: 400 naming the field", () =>
      Effect.gen(function* () {
        const { http: port } = yield* MovieServer.Ports
        assertBadRequest(yield* http(port, "GET", "/movie?id="), "id")
        assertBadRequest(yield* http(port, "GET", `/movie?id=${long(129)}`), "id")
      }))
  })
})
