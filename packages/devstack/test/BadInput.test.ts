/**
 * Bad input on every endpoint gets INVALID_ARGUMENT (gRPC) or 400 (HTTP) naming
 * the field and the reason, and stores nothing.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { RatingRpcs } from "@movieapp/contracts/Rating"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import * as System from "../src/System.js"

const SystemTest = System.layerTest()

const INVALID_ARGUMENT = 3
const NOT_FOUND = 5
const long = (n: number) => "x".repeat(n)
const movie = (overrides: Record<string, unknown>) => ({
  id: "m",
  title: "T",
  description: "",
  director: "",
  ...overrides
})

/** A protobuf string field as raw bytes, whatever they are. */
const stringField = (field: number, bytes: ReadonlyArray<number>) => [(field << 3) | 2, bytes.length, ...bytes]
const ascii = (text: string) => [...Buffer.from(text, "latin1")]
/** Bytes that are not UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence. */
const notUtf8 = [[0x61, 0xff, 0x62], [0xc0, 0xaf], [0xe2, 0x82]] as const

const expectInvalid = <A>(call: Effect.Effect<A, { code: number; details: string }>, details: string) =>
  Effect.flip(call).pipe(Effect.map((error) => {
    assert.strictEqual(error.code, INVALID_ARGUMENT, error.details)
    assert.strictEqual(error.details, details)
  }))

interface HttpAnswer {
  readonly status: number
  readonly body: any
}
/**
 * A write carries a token that may write metadata (its subject matters only once
 * a rating is valid): HTTP, as gRPC, refuses a stranger before reading the request
 * (Auth.test), and these requests are about what they hold.
 */
const http = (port: number, method: string, path: string, body?: string) =>
  Effect.gen(function*() {
    const token = method === "GET" ? {} : yield* Tokens.editor
    return yield* Effect.promise(async (): Promise<HttpAnswer> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { ...token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body })
      })
      const text = await response.text()
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
    })
  })

/**
 * A 400 in the one error shape, naming `field`: `{code, message, field}`, the
 * message `<field>: <reason>` worded as gRPC words it (`reason`, when given).
 */
const assertBadRequest = (answer: HttpAnswer, field: string, reason?: string) => {
  const shown = JSON.stringify(answer.body)
  assert.strictEqual(answer.status, 400, shown)
  assert.deepStrictEqual(Object.keys(answer.body ?? {}).sort(), ["code", "field", "message"], shown)
  assert.strictEqual(answer.body.code, "INVALID_ARGUMENT", shown)
  assert.strictEqual(answer.body.field, field, shown)
  assert.isTrue(String(answer.body.message).startsWith(`${field}: `), shown)
  if (reason !== undefined) assert.strictEqual(answer.body.message, `${field}: ${reason}`)
}

describe("bad input", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("gRPC", (it) => {
    for (const api of ["movieapp.v1", "original"] as const) {
      const clients = api === "movieapp.v1"
        ? {
          Metadata: v1Metadata.MetadataServiceClient,
          Rating: v1Rating.RatingServiceClient,
          Movie: v1Movie.MovieServiceClient
        }
        // Same request shapes: the original clients are driven through the v1 typings.
        : {
          Metadata: legacy.MetadataServiceClient as unknown as typeof v1Metadata.MetadataServiceClient,
          Rating: legacy.RatingServiceClient as unknown as typeof v1Rating.RatingServiceClient,
          Movie: legacy.MovieServiceClient as unknown as typeof v1Movie.MovieServiceClient
        }

      it.scoped(`${api} MetadataService: field named, nothing stored`, () =>
        Effect.gen(function*() {
          const client = yield* Grpc.client(clients.Metadata, `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`)
          const get = Grpc.method(client, "getMetadata")
          const put = Grpc.withMetadata(Grpc.method(client, "putMetadata"), yield* Tokens.editor)
          yield* expectInvalid(Grpc.call(get, { movieId: "" }), "movie_id: must not be empty")
          yield* expectInvalid(Grpc.call(get, { movieId: long(129) }), "movie_id: must be at most 128 characters")
          yield* expectInvalid(
            Grpc.call(get, { movieId: " padded" }),
            "movie_id: must not start or end with whitespace"
          )
          yield* expectInvalid(Grpc.call(get, { movieId: "a\u0000b" }), "movie_id: must not contain control characters")
          yield* expectInvalid(Grpc.call(get, { movieId: "a\u001bb" }), "movie_id: must not contain control characters")
          yield* expectInvalid(
            Grpc.call(get, { movieId: "a\ufffdb" }),
            "movie_id: must not contain U+FFFD (the replacement character)"
          )
          yield* expectInvalid(Grpc.call(put, {} as v1Metadata.PutMetadataRequest), "metadata: is required")
          const id = `bad-${api}`
          yield* expectInvalid(Grpc.call(put, { metadata: movie({ id: "" }) }), "metadata.id: must not be empty")
          yield* expectInvalid(
            Grpc.call(put, { metadata: movie({ id, title: "" }) }),
            "metadata.title: must not be empty"
          )
          yield* expectInvalid(
            Grpc.call(put, { metadata: movie({ id, title: long(257) }) }),
            "metadata.title: must be at most 256 characters"
          )
          yield* expectInvalid(
            Grpc.call(put, { metadata: movie({ id, description: long(4097) }) }),
            "metadata.description: must be at most 4096 characters"
          )
          yield* expectInvalid(
            Grpc.call(put, { metadata: movie({ id, director: long(257) }) }),
            "metadata.director: must be at most 256 characters"
          )
          const stored = yield* Effect.flip(Grpc.call(get, { movieId: id }))
          assert.strictEqual(stored.code, NOT_FOUND)
        }))

      it.scoped(`${api} MetadataService: bytes that are not protobuf, or strings that are not UTF-8, are INVALID_ARGUMENT naming the field; nothing stored`, () =>
        Effect.gen(function*() {
          const address = `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
          const service = api === "movieapp.v1" ? "/movieapp.v1.MetadataService" : "/MetadataService"
          const editor = yield* Tokens.editor
          const raw = (method: string, bytes: ReadonlyArray<number>) =>
            Grpc.callRaw(address, `${service}/${method}`, Uint8Array.from(bytes), editor)
          for (const bytes of notUtf8) {
            yield* expectInvalid(raw("GetMetadata", stringField(1, bytes)), "movie_id: must be valid UTF-8")
            const id = `utf8-${api}`
            const metadata = [...stringField(1, ascii(id)), ...stringField(2, ascii("T")), ...stringField(4, bytes)]
            yield* expectInvalid(raw("PutMetadata", stringField(1, metadata)), "metadata.director: must be valid UTF-8")
            assert.strictEqual((yield* Effect.flip(raw("GetMetadata", stringField(1, ascii(id))))).code, NOT_FOUND)
          }
          // A length beyond the message's end; a field of wire type 7, which does not exist.
          for (const bytes of [[0x0a, 0x05, 0x61], [0x0f, 0x01]]) {
            const error = yield* Effect.flip(raw("GetMetadata", bytes))
            assert.strictEqual(error.code, INVALID_ARGUMENT, error.details)
            assert.match(error.details, /^the request is not a valid protobuf message \(.+\)$/)
          }
          // Valid UTF-8 beyond ASCII, a leading U+FEFF, and a U+FFFD sent as such all arrive as sent.
          const client = yield* Grpc.client(clients.Metadata, address)
          const text = {
            id: `text-${api}`,
            title: "\ufeffAmélie 😀",
            description: "\ufffd stands for bytes a decoder could not read",
            director: "Jean-Pierre Jeunet"
          }
          yield* Grpc.call(Grpc.method(client, "putMetadata"), { metadata: text }, { metadata: editor })
          assert.deepStrictEqual(
            (yield* Grpc.call(Grpc.method(client, "getMetadata"), { movieId: text.id })).metadata,
            text
          )
        }))

      it.scoped(`${api} RatingService: field named, nothing stored`, () =>
        Effect.gen(function*() {
          const ratingPort = (yield* RatingServer.Ports).grpc
          const client = yield* Grpc.client(clients.Rating, `127.0.0.1:${ratingPort}`)
          const put = Grpc.withMetadata(Grpc.method(client, "putRating"), yield* Tokens.user("u1"))
          const get = Grpc.method(client, "getAggregatedRating")
          const recordId = `bad-${api}`
          const rating = (overrides: Record<string, unknown>) =>
            ({ recordId, recordType: "movie", userId: "u1", ratingValue: 5, ...overrides }) as v1Rating.PutRatingRequest
          const outOfRange = "rating_value: must be an integer from 1 to 10"
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: 0 })), outOfRange)
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: 11 })), outOfRange)
          yield* expectInvalid(Grpc.call(put, rating({ ratingValue: -3 })), outOfRange)
          yield* expectInvalid(
            Grpc.call(put, rating({ recordType: "book" })),
            `record_type: must be one of "movie", "tv"`
          )
          yield* expectInvalid(Grpc.call(put, rating({ recordType: "" })), `record_type: must be one of "movie", "tv"`)
          yield* expectInvalid(Grpc.call(put, rating({ userId: "" })), "user_id: must not be empty")
          yield* expectInvalid(Grpc.call(put, rating({ recordId: "" })), "record_id: must not be empty")
          yield* expectInvalid(Grpc.call(put, rating({ userId: long(129) })), "user_id: must be at most 128 characters")
          // (record a, user b\0c) and (record a\0b, user c) were one rating once.
          yield* expectInvalid(
            Grpc.call(put, rating({ userId: "b\u0000c" })),
            "user_id: must not contain control characters"
          )
          yield* expectInvalid(
            Grpc.call(put, rating({ recordId: `${recordId}\u0000u1` })),
            "record_id: must not contain control characters"
          )
          yield* expectInvalid(
            Grpc.call(put, rating({ userId: "\u007f" })),
            "user_id: must not contain control characters"
          )
          yield* expectInvalid(
            Grpc.call(put, rating({ userId: "\ufffd" })),
            "user_id: must not contain U+FFFD (the replacement character)"
          )
          const user = yield* Tokens.user("u1")
          const rawPut = (bytes: ReadonlyArray<number>) =>
            Grpc.callRaw(
              `127.0.0.1:${ratingPort}`,
              api === "movieapp.v1" ? "/movieapp.v1.RatingService/PutRating" : "/RatingService/PutRating",
              Uint8Array.from(bytes),
              user
            )
          for (const bytes of notUtf8) {
            yield* expectInvalid(
              rawPut([
                ...stringField(1, ascii(recordId)),
                ...stringField(2, bytes),
                ...stringField(3, ascii("movie")),
                0x20,
                5
              ]),
              "user_id: must be valid UTF-8"
            )
          }
          yield* expectInvalid(Grpc.call(get, { recordId: "", recordType: "movie" }), "record_id: must not be empty")
          yield* expectInvalid(
            Grpc.call(get, { recordId, recordType: "book" }),
            `record_type: must be one of "movie", "tv"`
          )
          if (api === "movieapp.v1") {
            yield* expectInvalid(
              Grpc.call(Grpc.method(client, "deleteRating"), { recordId, recordType: "movie", userId: "" }, {
                metadata: user
              }),
              "user_id: must not be empty"
            )
            const after = yield* Grpc.call(get, { recordId, recordType: "movie" })
            assert.deepStrictEqual(after, { ratingValue: undefined, ratingsCount: 0 })
          } else {
            const after = yield* Effect.flip(Grpc.call(get, { recordId, recordType: "movie" }))
            assert.strictEqual(after.code, NOT_FOUND)
          }
        }))

      it.scoped(`${api} MovieService: field named`, () =>
        Effect.gen(function*() {
          const client = yield* Grpc.client(clients.Movie, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)
          yield* expectInvalid(
            Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: "" }),
            "movie_id: must not be empty"
          )
          yield* expectInvalid(
            Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: long(200) }),
            "movie_id: must be at most 128 characters"
          )
          yield* expectInvalid(
            Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: "\u0000" }),
            "movie_id: must not contain control characters"
          )
          const path = api === "movieapp.v1"
            ? "/movieapp.v1.MovieService/GetMovieDetails"
            : "/MovieService/GetMovieDetails"
          const address = `127.0.0.1:${(yield* MovieServer.Ports).grpc}`
          yield* expectInvalid(
            Grpc.callRaw(address, path, Uint8Array.from(stringField(1, [0x31, 0xed, 0xa0, 0x80]))),
            "movie_id: must be valid UTF-8"
          )
        }))
    }
  })

  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("HTTP", (it) => {
    it.effect("metadata endpoints: 400 naming the field, nothing stored", () =>
      Effect.gen(function*() {
        const { http: port } = yield* MetadataServer.Ports
        assertBadRequest(yield* http(port, "GET", "/metadata?id="), "id", "must not be empty")
        assertBadRequest(yield* http(port, "GET", "/metadata"), "id", "is missing")
        assertBadRequest(yield* http(port, "PUT", "/metadata", "{not json"), "body")
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify(movie({ id: "h1", title: "" }))), "title")
        assertBadRequest(
          yield* http(port, "PUT", "/metadata", JSON.stringify(movie({ id: "h1", description: long(4097) }))),
          "description"
        )
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify({ id: "h1" })), "title")
        assertBadRequest(yield* http(port, "GET", "/metadata?id=a%00b"), "id")
        assertBadRequest(yield* http(port, "GET", "/metadata?id=%EF%BF%BD"), "id")
        assertBadRequest(yield* http(port, "PUT", "/metadata", JSON.stringify(movie({ id: "h1\u0000" }))), "id")
        assertBadRequest(
          yield* http(port, "PUT", "/metadata", `{"id":"h1","title":"\\udc00","description":"","director":""}`),
          "title"
        )
        // The same sentence as gRPC's NOT_FOUND details.
        assert.deepStrictEqual(yield* http(port, "GET", "/metadata?id=h1"), {
          status: 404,
          body: { code: "NOT_FOUND", message: "movie h1 not found" }
        })
      }))

    it.effect("rating endpoints: 400 naming the field, nothing stored", () =>
      Effect.gen(function*() {
        const { http: port } = yield* RatingServer.Ports
        const rating = (overrides: Record<string, unknown>) =>
          JSON.stringify({ recordId: "h2", recordType: "movie", userId: "u", value: 5, ...overrides })
        assertBadRequest(yield* http(port, "GET", "/rating?id=&type=movie"), "id")
        assertBadRequest(yield* http(port, "GET", "/rating?id=h2&type=book"), "type")
        assertBadRequest(yield* http(port, "PUT", "/rating", "[1,2"), "body")
        // gRPC's words for the same reasons (rating_value, user_id there).
        assertBadRequest(
          yield* http(port, "PUT", "/rating", rating({ value: 11 })),
          "value",
          "must be an integer from 1 to 10"
        )
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: 0 })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: 2.5 })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ value: "5" })), "value")
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ recordType: "book" })), "recordType")
        assertBadRequest(
          yield* http(port, "PUT", "/rating", rating({ userId: long(129) })),
          "userId",
          "must be at most 128 characters"
        )
        assertBadRequest(yield* http(port, "DELETE", "/rating?id=h2&type=movie"), "userId")
        // JSON escapes: a lone surrogate, and the two halves of one rating key cut at a NUL elsewhere.
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ userId: "\ud800" })), "userId")
        assertBadRequest(
          yield* http(port, "PUT", "/rating", rating({ recordId: "h2\u0000a", userId: "b" })),
          "recordId"
        )
        assertBadRequest(
          yield* http(port, "PUT", "/rating", rating({ userId: "a\u0000b" })),
          "userId",
          "must not contain control characters"
        )
        assertBadRequest(yield* http(port, "PUT", "/rating", rating({ userId: "\ufffd" })), "userId")
        assertBadRequest(yield* http(port, "DELETE", "/rating?id=h2&type=movie&userId=%00"), "userId")
        const after = yield* http(port, "GET", "/rating?id=h2&type=movie")
        assert.deepStrictEqual(after, { status: 200, body: { recordType: "movie", recordId: "h2", ratingsCount: 0 } })
      }))

    it.effect("SubmitRatingEvents (Effect RPC): InvalidArgument naming the event and the field, none of the batch stored", () =>
      Effect.gen(function*() {
        const { rpc } = yield* RatingServer.Ports
        const client = yield* RpcTransport.makeClient(RatingRpcs, { host: "127.0.0.1", port: rpc! })
        const event = (userId: string, recordId = "rpc-1") => ({
          eventType: "put",
          recordType: "movie",
          recordId,
          userId,
          value: 5
        })
        const ingestor = { headers: yield* Tokens.ingestor }
        const refused = (events: ReadonlyArray<unknown>) => Effect.flip(client.SubmitRatingEvents({ events }, ingestor))
        for (
          const [events, message] of [
            // MessagePack carries text as UTF-8, which has no lone surrogates: one arrives as U+FFFD.
            [[event("a"), event("\ud800")], "events.1.userId: must not contain U+FFFD (the replacement character)"],
            // One rating key cut at a NUL in two places: a batch once lost one of them.
            [
              [event("b\u0000c", "rpc-1"), event("c", "rpc-1\u0000b")],
              "events.0.userId: must not contain control characters"
            ],
            [[event("a"), event("b"), { ...event("c"), value: 11 }], "events.2.value: must be an integer from 1 to 10"],
            [[event("a"), [1]], "events.1: must be a JSON object, found an array"]
          ] as const
        ) {
          const error = yield* refused(events)
          assert.strictEqual(error._tag, "InvalidArgument")
          assert.strictEqual(error.message, message)
        }
        const after = yield* client.GetAggregatedRating({ recordType: "movie", recordId: "rpc-1" as never })
        assert.strictEqual(after.count, 0)
        assert.deepStrictEqual(yield* client.SubmitRatingEvents({ events: [event("a"), event("b")] }, ingestor), {
          applied: 2
        })
      }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

    it.effect("movie endpoint: 400 naming the field", () =>
      Effect.gen(function*() {
        const { http: port } = yield* MovieServer.Ports
        assertBadRequest(yield* http(port, "GET", "/movie?id="), "id")
        assertBadRequest(yield* http(port, "GET", `/movie?id=${long(129)}`), "id")
      }))
  })
})
