/**
 * One trace across every hop: a caller's gRPC call (its W3C context in the
 * metadata) into the gateway, the gateway's Effect RPC calls to metadata and
 * rating, their use cases and their storage, memory and MariaDB. Each service has
 * its own tracer; all write to one in-memory exporter.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataRepositoryMysql from "@movieapp/metadata/adapters/MetadataRepositoryMysql"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import type { ServerConfig } from "@movieapp/platform/Config"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Readiness from "@movieapp/platform/Readiness"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingEventSourceInProcess from "@movieapp/rating/adapters/RatingEventSourceInProcess"
import * as RatingRepositoryMysql from "@movieapp/rating/adapters/RatingRepositoryMysql"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as RatingEventPublisherRpc from "@movieapp/ratingingestor/adapters/RatingEventPublisherRpc"
import * as Ingest from "@movieapp/ratingingestor/Ingest"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as Tokens from "@movieapp/testkit/Tokens"
import * as Tracing from "@movieapp/testkit/Tracing"
import { SpanKind } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Duration, Effect, Layer, Logger, LogLevel, Schedule } from "effect"
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as System from "../src/System.js"

/** Stores a movie and a rating through the backends' own gRPC APIs (outside any trace of interest). */
const seed = (movieId: string) =>
  Effect.gen(function*() {
    const metadata = yield* Grpc.client(
      v1Metadata.MetadataServiceClient,
      `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
    )
    yield* Grpc.call(Grpc.method(metadata, "putMetadata"), {
      metadata: { id: movieId, title: "Heat", description: "", director: "Michael Mann" }
    }, { metadata: yield* Tokens.editor })
    const rating = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${(yield* RatingServer.Ports).grpc}`)
    yield* Grpc.call(Grpc.method(rating, "putRating"), {
      recordId: movieId,
      recordType: "movie",
      userId: "u",
      ratingValue: 8
    }, { metadata: yield* Tokens.user("u") })
  }).pipe(Effect.scoped)

/** GetMovieDetails on the gateway as a caller whose trace context is `traceparent`. */
const details = (movieId: string, traceparent: string) =>
  Effect.gen(function*() {
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)
    return yield* Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId }, { metadata: { traceparent } })
  }).pipe(Effect.scoped)

const GATEWAY = "movieapp.v1.MovieService/GetMovieDetails"

/**
 * Asserts the chain of one GetMovieDetails call from the gateway's server span
 * down to each backend's repository; returns the repository spans.
 */
const assertChain = (spans: ReadonlyArray<ReadableSpan>, gateway: ReadableSpan) => {
  const at = (parent: ReadableSpan | { readonly spanId: string }) =>
    "spanContext" in parent ? parent.spanContext() : parent
  const child = (parent: ReadableSpan | { readonly spanId: string }, name: string, service: string) => {
    const span = Tracing.childOf(spans, at(parent), name)
    assert.strictEqual(Tracing.serviceOf(span), service, `${name} recorded by ${service}`)
    return span
  }
  assert.strictEqual(Tracing.serviceOf(gateway), "movie")
  assert.strictEqual(gateway.kind, SpanKind.SERVER)
  assert.deepInclude(gateway.attributes, {
    "rpc.system": "grpc",
    "rpc.service": "movieapp.v1.MovieService",
    "rpc.method": "GetMovieDetails",
    "rpc.grpc.status_code": 0
  })
  const useCase = child(gateway, "MovieService.details", "movie")
  const backend = (rpc: string, service: string, useCaseName: string, repository: string) => {
    const client = child(useCase, `RpcClient.${rpc}`, "movie")
    assert.strictEqual(client.attributes["rpc.system"], "effect_rpc")
    const server = child(client, `RpcServer.${rpc}`, service)
    assert.strictEqual(server.attributes["rpc.system"], "effect_rpc")
    return child(child(server, useCaseName, service), repository, service)
  }
  return {
    metadata: backend("GetMetadata", "metadata", "MetadataService.get", "MetadataRepository.get"),
    rating: backend("GetAggregatedRating", "rating", "RatingService.aggregate", "RatingRepository.aggregate")
  }
}

// The 10 spans of one GetMovieDetails: gateway (4), and each backend (3).
const complete = (spans: ReadonlyArray<ReadableSpan>) =>
  spans.length >= 10 && spans.some((s) => s.name === "RatingRepository.aggregate") &&
  spans.some((s) => s.name === "MetadataRepository.get")

describe("tracing across every hop", () => {
  const recorder = Tracing.make()
  layer(System.layerTest({ tracing: (service) => recorder.tracing(service) }), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })(
    "memory storage",
    (it) => {
      it.effect("the caller's trace continues through the gateway, Effect RPC and both backends down to their repositories", () =>
        Effect.gen(function*() {
          yield* seed("heat")
          const caller = Tracing.callerContext()
          const answer = yield* details("heat", caller.traceparent)
          assert.strictEqual(answer.movieDetails?.ratingsCount, 1)

          const spans = yield* recorder.trace(caller.traceId, complete)
          assertChain(spans, Tracing.childOf(spans, caller, GATEWAY))
          assert.isTrue(spans.every((span) => span.spanContext().traceId === caller.traceId), Tracing.render(spans))
        }))

      it.effect("a failed call is recorded with its gRPC status", () =>
        Effect.gen(function*() {
          const caller = Tracing.callerContext()
          const error = yield* Effect.flip(details("no-such-movie", caller.traceparent))
          assert.strictEqual(error.code, 5)
          const spans = yield* recorder.trace(caller.traceId, (s) =>
            s.some((span) => span.name === "MetadataRepository.get") && s.some((span) => span.name === GATEWAY))
          const gateway = Tracing.childOf(spans, caller, GATEWAY)
          assert.strictEqual(gateway.attributes["rpc.grpc.status_code"], 5)
          assert.strictEqual(gateway.status.code, 2) // ERROR
        }))

      it.effect("a caller's decision not to sample is followed by every service", () =>
        Effect.gen(function*() {
          yield* seed("ronin")
          const unsampled = Tracing.callerContext(false)
          yield* details("ronin", unsampled.traceparent)
          // A later sampled call through the same services completes after every span of the first has ended.
          const sampled = Tracing.callerContext()
          yield* details("ronin", sampled.traceparent)
          yield* recorder.trace(sampled.traceId, complete)
          const leaked = recorder.spans().filter((span) => span.spanContext().traceId === unsampled.traceId)
          assert.deepStrictEqual(leaked.map((span) => `${span.name} [${String(Tracing.serviceOf(span))}]`), [])
        }))

      it.effect("a rating event's path: the ingestor's run, its RPC to rating, and the batch applied to the repository", () =>
        Effect.gen(function*() {
          const file = join(tmpdir(), `events-${Date.now()}.json`)
          writeFileSync(
            file,
            JSON.stringify([{
              userId: "u1",
              recordId: "heat",
              recordType: "movie",
              value: 7,
              providerId: "p",
              eventType: "put"
            }])
          )
          const rating = yield* RatingServer.Ports
          // The ingestor as its own service, in this process, under its own tracer.
          const summary = yield* Ingest.run({ file }).pipe(
            Effect.provide(
              RatingEventPublisherRpc.layer({
                address: { host: "127.0.0.1", port: rating.rpc! },
                token: yield* Tokens.ingestorToken
              })
            ),
            Effect.provide([recorder.tracing("ratingingestor"), NodeFileSystem.layer])
          )
          assert.strictEqual(summary.published, 1)
          const run = yield* Effect.sync(() =>
            recorder.spans().find((span) => span.name === "Ingest.run" && Tracing.serviceOf(span) === "ratingingestor")
          ).pipe(
            Effect.filterOrFail((span) => span !== undefined),
            Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("5 seconds"))),
            Effect.orDie
          )
          const spans = yield* recorder.trace(
            run!.spanContext().traceId,
            (s) => s.some((span) => span.name === "RatingRepository.applyEvents")
          )
          const child = (parent: ReadableSpan, name: string, service: string) => {
            const span = Tracing.childOf(spans, parent.spanContext(), name)
            assert.strictEqual(Tracing.serviceOf(span), service, name)
            return span
          }
          const publish = child(run!, "RatingEventPublisher.publish", "ratingingestor")
          const server = child(
            child(publish, "RpcClient.SubmitRatingEvents", "ratingingestor"),
            "RpcServer.SubmitRatingEvents",
            "rating"
          )
          const submit = child(server, "RatingService.submit", "rating")
          // The queued batch is applied by the ingester's own fiber, still as part of the submitter's trace.
          child(child(submit, "Ingester.applyBatch", "rating"), "RatingRepository.applyEvents", "rating")
        }))

      it.effect("a call without trace context starts a new trace at the gateway", () =>
        Effect.gen(function*() {
          yield* seed("alien")
          const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)
          const before = new Set(recorder.spans().map((span) => span.spanContext().spanId))
          yield* Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: "alien" })
          const root = yield* Effect.sync(() =>
            recorder.spans().find((span) => span.name === GATEWAY && !before.has(span.spanContext().spanId))
          ).pipe(
            Effect.filterOrFail((span) => span !== undefined),
            Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("5 seconds"))),
            Effect.orDie
          )
          assert.isUndefined(root!.parentSpanContext)
          const spans = yield* recorder.trace(root!.spanContext().traceId, complete)
          assertChain(spans, root!)
        }).pipe(Effect.scoped))
    }
  )
})

const server = (): ServerConfig => ({
  host: "127.0.0.1",
  grpcPort: 0,
  httpPort: 0,
  advertiseHost: "127.0.0.1",
  shutdownTimeout: Duration.seconds(5)
})

/** The three services with metadata and rating on one MariaDB database, each traced by `recorder`. */
const onMariaDb = (recorder: Tracing.SpanRecorder) =>
  Layer.unwrapEffect(Effect.map(MariaDb.TestDatabase, (database) =>
    Layer.mergeAll(
      MetadataServer.layer(server()).pipe(
        Layer.provide(
          MetadataRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, MetadataRepositoryMysql.migrations)))
        ),
        Layer.provide([Readiness.layer, recorder.tracing(MetadataServer.SERVICE_NAME)])
      ),
      RatingServer.layer(server()).pipe(
        Layer.provide([
          RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations))),
          RatingEventSourceInProcess.layer
        ]),
        Layer.provide([Readiness.layer, recorder.tracing(RatingServer.SERVICE_NAME)])
      ),
      MovieServer.layer({
        server: server(),
        backends: { timeout: Duration.seconds(5), retries: 3, backoff: Duration.millis(25) }
      }).pipe(
        Layer.provide([Readiness.layer, recorder.tracing(MovieServer.SERVICE_NAME)])
      )
    ).pipe(Layer.provide(DiscoveryMemory.layer())))).pipe(
      Layer.provideMerge(Tokens.layerWriteAccess),
      Layer.provide(MariaDb.layerTestDatabase),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )

describe.runIf(await MariaDb.available())("tracing across every hop, on MariaDB", () => {
  const recorder = Tracing.make()
  layer(onMariaDb(recorder), { excludeTestServices: true, timeout: "60 seconds" })("MariaDB storage", (it) => {
    it.effect("the trace reaches each backend's SQL statements", () =>
      Effect.gen(function*() {
        yield* seed("heat")
        const caller = Tracing.callerContext()
        const answer = yield* details("heat", caller.traceparent)
        assert.strictEqual(answer.movieDetails?.metadata?.title, "Heat")

        const spans = yield* recorder.trace(caller.traceId, (s) =>
          complete(s) && s.filter((span) => span.name === "sql.execute").length >= 2)
        const repositories = assertChain(spans, Tracing.childOf(spans, caller, GATEWAY))
        for (const [service, repository] of Object.entries(repositories)) {
          const statement = Tracing.childOf(spans, repository.spanContext(), "sql.execute")
          assert.strictEqual(Tracing.serviceOf(statement), service)
          assert.strictEqual(statement.kind, SpanKind.CLIENT)
          assert.strictEqual(statement.attributes["db.system.name"], "mysql")
          assert.match(String(statement.attributes["db.query.text"]), /^SELECT /)
        }
      }))
  })
})
