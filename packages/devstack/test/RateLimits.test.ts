/**
 * Per-caller rate limits over real sockets: at the gateway per peer address (one
 * budget for gRPC and HTTP), on writes per token subject. A caller over its
 * limit is answered RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms` / 429 with
 * `Retry-After`, and counted in /metrics; another caller is not slowed at all.
 * Writes without a valid token are charged to their peer address.
 * The limits refill at one call per 100 s here, so no test depends on timing.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as PrometheusText from "@movieapp/testkit/PrometheusText"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import * as http from "node:http"
import * as System from "../src/System.js"

const GATEWAY_BURST = 5
const WRITES_BURST = 3
const SLOW = 0.01

const SystemTest = System.layerTest({
  rateLimits: { gateway: { rate: SLOW, burst: GATEWAY_BURST }, writes: { rate: SLOW, burst: WRITES_BURST } }
})

/** A GET from the loopback address `from` (127.0.0.1 or 127.0.0.2): each is a caller of its own. */
const getFrom = (from: string, port: number, path: string) =>
  Effect.async<{ status: number; retryAfter: string | undefined; body: string }, Error>((resume) => {
    const request = http.get({ host: "127.0.0.1", port, path, localAddress: from, agent: false }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => body += chunk)
      response.on("end", () =>
        resume(Effect.succeed({
          status: response.statusCode!,
          retryAfter: response.headers["retry-after"],
          body
        })))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
  })

const scrape = (port: number) =>
  Effect.flatMap(
    Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text())),
    (text) => Effect.try(() => PrometheusText.parse(text))
  )

describe("rate limits", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("per caller", (it) => {
    it.scoped("gateway: a noisy peer is refused (429 with Retry-After, then RESOURCE_EXHAUSTED over gRPC too) while another peer is answered", () =>
      Effect.gen(function*() {
        const movie = yield* MovieServer.Ports
        const metadata = yield* Grpc.client(
          v1Metadata.MetadataServiceClient,
          `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
        )
        yield* Grpc.call(Grpc.method(metadata, "putMetadata"), {
          metadata: { id: "heat", title: "Heat", description: "", director: "Michael Mann" }
        }, { metadata: yield* Tokens.editor })
        const before = yield* scrape(movie.http)

        for (let i = 0; i < GATEWAY_BURST; i++) {
          assert.strictEqual((yield* getFrom("127.0.0.1", movie.http, "/movie?id=heat")).status, 200, `call ${i}`)
        }
        const refused = yield* getFrom("127.0.0.1", movie.http, "/movie?id=heat")
        assert.strictEqual(refused.status, 429, refused.body)
        assert.strictEqual(JSON.parse(refused.body).code, "RESOURCE_EXHAUSTED")
        // One call per 100 s: the next is due in about 100 s.
        assert.isAtLeast(Number(refused.retryAfter), 90)
        assert.isAtMost(Number(refused.retryAfter), 100)
        // The same peer's gRPC calls share its budget.
        const gateway = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${movie.grpc}`)
        const grpcRefused = yield* Effect.flip(Grpc.call(Grpc.method(gateway, "getMovieDetails"), { movieId: "heat" }))
        assert.strictEqual(grpcRefused.code, Code.RESOURCE_EXHAUSTED, grpcRefused.details)
        assert.match(grpcRefused.details, /^rate limit exceeded: retry in \d+\.\d{3} s$/)
        assert.isAbove(Number(grpcRefused.metadata.get("grpc-retry-pushback-ms")[0]), 90_000)

        // Another peer is answered, every time, while the first stays refused.
        for (let i = 0; i < GATEWAY_BURST; i++) {
          assert.strictEqual((yield* getFrom("127.0.0.2", movie.http, "/movie?id=heat")).status, 200, `quiet call ${i}`)
          assert.strictEqual((yield* getFrom("127.0.0.1", movie.http, "/movie?id=heat")).status, 429)
        }
        // Metrics and health are never limited: a scraper shares no budget with callers.
        assert.strictEqual((yield* getFrom("127.0.0.1", movie.http, "/health")).status, 200)

        const after = yield* scrape(movie.http)
        const limited = (families: typeof before) =>
          PrometheusText.value(families, "rate_limited_calls_total", { limit: "calls" }) ?? 0
        assert.strictEqual(limited(after) - limited(before), 1 + 1 + GATEWAY_BURST)
        const exhausted = (families: typeof before) =>
          PrometheusText.value(families, "rpc_server_calls_total", {
            rpc_service: "movieapp.v1.MovieService",
            status: "RESOURCE_EXHAUSTED"
          }) ?? 0
        assert.strictEqual(exhausted(after) - exhausted(before), 1)
      }))

    it.scoped("writes: a noisy user is refused RESOURCE_EXHAUSTED once over its burst; another user, from the same address, is not", () =>
      Effect.gen(function*() {
        const ratings = yield* Grpc.client(
          v1Rating.RatingServiceClient,
          `127.0.0.1:${(yield* RatingServer.Ports).grpc}`
        )
        const put = (userId: string, value: number) =>
          Effect.flatMap(Tokens.user(userId), (token) =>
            Grpc.call(Grpc.method(ratings, "putRating"), {
              recordId: "limited",
              recordType: "movie",
              userId,
              ratingValue: value
            }, { metadata: token }))
        for (let i = 1; i <= WRITES_BURST; i++) yield* put("noisy", i)
        const refused = yield* Effect.flip(put("noisy", 9))
        assert.strictEqual(refused.code, Code.RESOURCE_EXHAUSTED, refused.details)
        assert.isAbove(Number(refused.metadata.get("grpc-retry-pushback-ms")[0]), 90_000)
        for (let i = 1; i <= WRITES_BURST; i++) yield* put("quiet", i)
        const aggregate = yield* Grpc.call(Grpc.method(ratings, "getAggregatedRating"), {
          recordId: "limited",
          recordType: "movie"
        })
        // The noisy user's last accepted rating (3) and the quiet one's (3): the refused 9 was not stored.
        assert.deepStrictEqual(aggregate, { ratingValue: 3, ratingsCount: 2 })
      }))

    it.scoped("writes without a valid token: a peer guessing tokens is refused RESOURCE_EXHAUSTED once over the burst, over gRPC and HTTP alike; a valid token from the same address is not", () =>
      Effect.gen(function*() {
        const ports = yield* RatingServer.Ports
        const ratings = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${ports.grpc}`)
        const rating = { recordId: "guessed", recordType: "movie", userId: "victim", ratingValue: 5 }
        const guess = (authorization: string | undefined) =>
          Effect.flip(Grpc.call(
            Grpc.method(ratings, "putRating"),
            rating,
            authorization === undefined ? {} : { metadata: { authorization } }
          ))
        // A wrong token, none at all and a malformed header all draw on the address's one budget.
        const unauthenticated = [
          yield* guess("Bearer not-a-jwt"),
          yield* guess(undefined),
          yield* guess("Basic dmljdGltOnB3")
        ]
        assert.strictEqual(unauthenticated.length, WRITES_BURST)
        for (const refused of unauthenticated) assert.strictEqual(refused.code, Code.UNAUTHENTICATED, refused.details)
        const limited = yield* guess("Bearer not-a-jwt-either")
        assert.strictEqual(limited.code, Code.RESOURCE_EXHAUSTED, limited.details)
        assert.isAbove(Number(limited.metadata.get("grpc-retry-pushback-ms")[0]), 90_000)
        const overHttp = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${ports.http}/rating`, {
            method: "PUT",
            headers: { authorization: "Bearer not-a-jwt", "content-type": "application/json" },
            body: JSON.stringify({ recordId: "guessed", recordType: "movie", userId: "victim", value: 5 })
          })
        )
        assert.strictEqual(overHttp.status, 429, yield* Effect.promise(() => overHttp.text()))
        assert.isNotNull(overHttp.headers.get("retry-after"))

        // The victim, with its own token, from the same address: its budget is untouched.
        yield* Grpc.call(Grpc.method(ratings, "putRating"), rating, { metadata: yield* Tokens.user("victim") })
        const aggregate = yield* Grpc.call(Grpc.method(ratings, "getAggregatedRating"), {
          recordId: "guessed",
          recordType: "movie"
        })
        assert.deepStrictEqual(aggregate, { ratingValue: 5, ratingsCount: 1 })
        const families = yield* scrape(ports.http)
        assert.strictEqual(PrometheusText.value(families, "rate_limited_calls_total", { limit: "unauthenticated" }), 2)
      }))
  })
})
