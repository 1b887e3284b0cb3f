/**
 * The HTTP listener over real sockets: request bodies bounded per path (413,
 * unread beyond the limit), bodies that are not JSON answered with the reason,
 * and defects logged at ERROR with their cause, never shown to the caller.
 */
import { HttpLayerRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import * as LargeBody from "@movieapp/testkit/LargeBody"
import { Context, Effect, Layer, Logger } from "effect"
import * as Http from "../src/Http.js"

const LIMIT = 1000

/** Echoes the length of the body it read; `/bug` dies, as a bug would. */
const routes = Layer.mergeAll(
  HttpLayerRouter.add(
    "PUT",
    "/echo",
    (request) => Effect.map(request.text, (text) => HttpServerResponse.unsafeJson({ length: text.length }))
  ),
  HttpLayerRouter.add(
    "PUT",
    "/json",
    (request) => Effect.map(request.json, (json) => HttpServerResponse.unsafeJson({ json }))
  ),
  HttpLayerRouter.add(
    "GET",
    "/bug",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, () => Effect.die(new Error("secret detail of a bug")))
  )
)

/** A server with the test's limits; its port and the ERROR lines logged. */
const server = Effect.gen(function*() {
  const errors: Array<{ message: unknown; cause: string }> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    if (logLevel._tag === "Error") {
      errors.push({ message: Array.isArray(message) ? message[0] : message, cause: String(cause) })
    }
  })
  const context = yield* Layer.build(
    Http.serve(routes, { host: "127.0.0.1", port: 0, maxBodyBytes: LIMIT }).pipe(
      Layer.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  )
  return { port: Http.boundPort(Context.get(context, HttpServer.HttpServer)), errors }
})

const put = (port: number, path: string, body: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: "PUT",
      body,
      headers: { "content-type": "application/json" }
    })
    return { status: response.status, body: await response.text() }
  })

describe("Http.serve", () => {
  it.scopedLive("a body up to the limit is read; one byte more is 413 naming the limit, and the connection is closed", () =>
    Effect.gen(function*() {
      const { port } = yield* server
      assert.deepStrictEqual(yield* put(port, "/echo", " ".repeat(LIMIT)), { status: 200, body: `{"length":${LIMIT}}` })
      const over = yield* LargeBody.send({ port, method: "PUT", path: "/echo", bytes: LIMIT + 1, declareLength: true })
      assert.strictEqual(over.status, 413)
      assert.deepStrictEqual(JSON.parse(over.body), {
        code: "RESOURCE_EXHAUSTED",
        message: `the request body is larger than ${LIMIT} bytes`
      })
      assert.strictEqual(over.headers.connection, "close")
    }))

  it.scopedLive("a body declared larger than the limit is refused before any of it is sent", () =>
    Effect.gen(function*() {
      const { port } = yield* server
      const outcome = yield* LargeBody.send({
        port,
        method: "PUT",
        path: "/echo",
        bytes: 100 * 1024 * 1024,
        declareLength: true,
        withholdBody: true
      }).pipe(
        Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("no answer without the body: the server waits to read it")
        })
      )
      assert.strictEqual(outcome.status, 413)
    }))

  it.scopedLive("a chunked body is read no further than the limit: the server stops taking it", () =>
    Effect.gen(function*() {
      const { port } = yield* server
      const bytes = 100 * 1024 * 1024
      const outcome = yield* LargeBody.send({ port, method: "PUT", path: "/echo", bytes, declareLength: false })
      // The platform's reader stops by closing the connection, so the 413 may not get through; the body did not.
      assert.include([413, undefined], outcome.status)
      // What the kernel buffers on both sides (a few MB on loopback) is all the client got rid of.
      assert.isBelow(outcome.sent, 16 * 1024 * 1024, `the connection took ${outcome.sent} bytes`)
    }))

  it.scopedLive("a body that is not JSON is 400 with the reason, logged as nothing worse", () =>
    Effect.gen(function*() {
      const { errors, port } = yield* server
      const answer = yield* put(port, "/json", "{not json")
      assert.strictEqual(answer.status, 400)
      const body = JSON.parse(answer.body)
      assert.deepStrictEqual([body.code, body.field], ["INVALID_ARGUMENT", "body"])
      assert.match(body.message, /^body: is not valid JSON: /)
      assert.deepStrictEqual(errors, [])
    }))

  it.scopedLive("a defect is answered 500 without its details and logged at ERROR with its cause", () =>
    Effect.gen(function*() {
      const { errors, port } = yield* server
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/bug`))
      assert.strictEqual(response.status, 500)
      assert.notInclude(yield* Effect.promise(() => response.text()), "secret")
      assert.strictEqual(errors.length, 1)
      assert.strictEqual(errors[0]!.message, "HTTP request failed on a bug")
      assert.include(errors[0]!.cause, "secret detail of a bug")
    }))
})
