/**
 * No request can make a service hold more than its limits (Config's
 * SERVER_MAX_REQUEST_BYTES, SERVER_MAX_RPC_MESSAGE_BYTES) at every edge, over
 * real sockets: gRPC messages (RESOURCE_EXHAUSTED), HTTP bodies (413, not read
 * beyond the limit), Effect RPC messages (their own, larger limit).
 */
import { assert, describe, layer } from "@effect/vitest"
import { RatingRpcs } from "@movieapp/contracts/Rating"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RPC_MESSAGE_BYTES } from "@movieapp/platform/Config"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as LargeBody from "@movieapp/testkit/LargeBody"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import * as System from "../src/System.js"

const RESOURCE_EXHAUSTED = 8
const INVALID_ARGUMENT = 3
const NOT_FOUND = 5
const MB = 1024 * 1024

describe("request size limits", () => {
  layer(System.layerTest(), { excludeTestServices: true, timeout: "120 seconds" })("at every edge", (it) => {
    it.scoped("gRPC: a message over the limit is RESOURCE_EXHAUSTED before any handler runs; nothing stored", () =>
      Effect.gen(function*() {
        const client = yield* Grpc.client(
          v1Metadata.MetadataServiceClient,
          `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
        )
        const editor = { metadata: yield* Tokens.editor }
        const put = (description: string) =>
          Grpc.call(Grpc.method(client, "putMetadata"), {
            metadata: { id: "huge", title: "T", description, director: "" }
          }, editor)
        const over = yield* Effect.flip(put("x".repeat(DEFAULT_MAX_REQUEST_BYTES)))
        assert.strictEqual(over.code, RESOURCE_EXHAUSTED, over.details)
        // Under the limit, the message is read and judged as usual.
        const invalid = yield* Effect.flip(put("x".repeat(DEFAULT_MAX_REQUEST_BYTES - 100)))
        assert.strictEqual(invalid.code, INVALID_ARGUMENT)
        assert.strictEqual(invalid.details, "metadata.description: must be at most 4096 characters")
        assert.strictEqual(
          (yield* Effect.flip(Grpc.call(Grpc.method(client, "getMetadata"), { movieId: "huge" }))).code,
          NOT_FOUND
        )
      }))

    it.effect("HTTP: a 100 MB PUT /metadata is 413 without being read, declared or chunked", () =>
      Effect.gen(function*() {
        const { http: port } = yield* MetadataServer.Ports
        const declared = yield* LargeBody.send({
          port,
          method: "PUT",
          path: "/metadata",
          bytes: 100 * MB,
          declareLength: true,
          withholdBody: true
        }).pipe(
          Effect.timeoutFail({
            duration: "10 seconds",
            onTimeout: () => new Error("no answer without the body: the server waits to read it")
          })
        )
        assert.strictEqual(declared.status, 413)
        assert.deepStrictEqual(JSON.parse(declared.body), {
          code: "RESOURCE_EXHAUSTED",
          message: `the request body is larger than ${DEFAULT_MAX_REQUEST_BYTES} bytes`
        })
        // Chunked, from a writer (a stranger is refused before the body is read: below).
        const chunked = yield* LargeBody.send({
          port,
          method: "PUT",
          path: "/metadata",
          bytes: 100 * MB,
          declareLength: false,
          headers: yield* Tokens.editor
        })
        assert.isBelow(chunked.sent, 16 * MB, `the connection took ${chunked.sent} bytes of 100 MB`)
        assert.include([413, undefined], chunked.status)
      }))

    it.effect("HTTP: a stranger's body is not read: 401, and the connection is closed rather than drained", () =>
      Effect.gen(function*() {
        const { http: port } = yield* MetadataServer.Ports
        const refused = yield* LargeBody.send({
          port,
          method: "PUT",
          path: "/metadata",
          bytes: 100 * MB,
          declareLength: false
        })
        assert.strictEqual(refused.status, 401)
        assert.strictEqual(refused.headers.connection, "close")
      }))

    it.effect("Effect RPC: a batch of events beyond the HTTP JSON limit is taken; a message beyond its own limit closes that connection, and no other", () =>
      Effect.gen(function*() {
        const { rpc } = yield* RatingServer.Ports
        const address = { host: "127.0.0.1", port: rpc! }
        const client = yield* RpcTransport.makeClient(RatingRpcs, address)
        // About 100 KB: the ingestor's batches are of this order.
        const events = Array.from(
          { length: 1000 },
          (_, i) => ({ eventType: "put", recordType: "movie", recordId: "big-batch", userId: `user-${i}`, value: 7 })
        )
        assert.isAbove(JSON.stringify(events).length, DEFAULT_MAX_REQUEST_BYTES)
        const ingestor = { headers: yield* Tokens.ingestor }
        assert.deepStrictEqual(yield* client.SubmitRatingEvents({ events }, ingestor), { applied: 1000 })
        const greedy = yield* RpcTransport.makeClient(RatingRpcs, address)
        const huge = Array.from(
          { length: 1 + DEFAULT_MAX_RPC_MESSAGE_BYTES / 64 },
          (_, i) => ({ ...events[0]!, userId: `user-${i}-${"x".repeat(32)}` })
        )
        const refused = yield* Effect.flip(greedy.SubmitRatingEvents({ events: huge }, ingestor))
        assert.strictEqual(refused._tag, "RpcClientError")
        assert.deepStrictEqual(yield* client.SubmitRatingEvents({ events: events.slice(0, 1) }, ingestor), {
          applied: 1
        })
      }).pipe(Effect.scoped))
  })
})
