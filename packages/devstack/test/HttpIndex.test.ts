/**
 * What a newcomer meets on each HTTP port: `GET /` says which service answers,
 * its version and where to go (OpenAPI document, metrics, health, the gRPC
 * port), each link answers; a path nobody serves and a body that is not JSON are
 * answered in the one error shape, saying what to do.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import * as System from "../src/System.js"

const get = (port: number, path: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, init)
    return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() }
  })

const versionOf = (service: string) =>
  JSON.parse(readFileSync(new URL(`../../${service}/package.json`, import.meta.url), "utf8")).version as string

const servers = [
  { name: "metadata", ports: MetadataServer.Ports },
  { name: "rating", ports: RatingServer.Ports },
  { name: "movie", ports: MovieServer.Ports }
] as const

describe("each HTTP port", () => {
  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })("of the dev stack", (it) => {
    for (const server of servers) {
      it.effect(`${server.name}: GET / names the service and version and links to what it serves; every link answers`, () =>
        Effect.gen(function*() {
          const ports = yield* server.ports
          const index = yield* get(ports.http, "/")
          assert.strictEqual(index.status, 200)
          assert.match(index.type, /application\/json/)
          assert.deepStrictEqual(JSON.parse(index.text), {
            service: server.name,
            version: versionOf(server.name),
            links: { openapi: "/openapi.json", metrics: "/metrics", health: "/health" },
            grpc: { port: ports.grpc, services: ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] }
          })
          const openapi = yield* get(ports.http, "/openapi.json")
          assert.strictEqual(JSON.parse(openapi.text).openapi, "3.1.0")
          assert.include((yield* get(ports.http, "/metrics")).text, "target_info")
          // Health over HTTP is gRPC health's own answer.
          assert.deepStrictEqual(yield* get(ports.http, "/health"), {
            status: 200,
            type: "application/json",
            text: `{"status":"SERVING"}`
          })
          assert.strictEqual(yield* Grpc.healthCheck(`127.0.0.1:${ports.grpc}`, ""), "SERVING")
        }))
    }

    it.effect("a path nobody serves: 404 NOT_FOUND pointing at GET /", () =>
      Effect.gen(function*() {
        const { http } = yield* MovieServer.Ports
        const answer = yield* get(http, "/films?id=1")
        assert.strictEqual(answer.status, 404)
        assert.deepStrictEqual(JSON.parse(answer.text), {
          code: "NOT_FOUND",
          message: "no route for GET /films; GET / lists what this service serves"
        })
      }))

    it.effect("a JSON body sent without content-type: application/json (curl -d): 415 saying so, nothing stored", () =>
      Effect.gen(function*() {
        const { http } = yield* RatingServer.Ports
        const body = JSON.stringify({ recordId: "form-1", recordType: "movie", userId: "u", value: 9 })
        const token = yield* Tokens.user("u")
        const answer = yield* get(http, "/rating", {
          method: "PUT",
          body,
          headers: { "content-type": "application/x-www-form-urlencoded", ...token }
        })
        assert.strictEqual(answer.status, 415)
        assert.deepStrictEqual(JSON.parse(answer.text), {
          code: "INVALID_ARGUMENT",
          message:
            "body: must be JSON, sent with content-type: application/json (it was sent as application/x-www-form-urlencoded)",
          field: "body"
        })
        assert.strictEqual(JSON.parse((yield* get(http, "/rating?id=form-1&type=movie")).text).ratingsCount, 0)
        // The same body as JSON is taken.
        const taken = yield* get(http, "/rating", {
          method: "PUT",
          body,
          headers: { "content-type": "application/json", ...token }
        })
        assert.strictEqual(taken.status, 200, taken.text)
      }))
  })
})
