/**
 * `GET /metrics` of every service, scraped over real HTTP and read by a strict
 * Prometheus text parser: calls by method and status with latency histograms for
 * gRPC and Effect RPC, and any Effect metric of the process without registration.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as PrometheusText from "@movieapp/testkit/PrometheusText"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect, Metric } from "effect"
import * as System from "../src/System.js"

const scrape = (port: number) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`)
    return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
  })

const scrapeParsed = (port: number) =>
  Effect.flatMap(scrape(port), ({ text }) => Effect.try(() => PrometheusText.parse(text)))

const gateway = { rpc_system: "grpc", rpc_service: "movieapp.v1.MovieService", rpc_method: "GetMovieDetails" }
const getMetadata = { rpc_system: "effect_rpc", rpc_service: "MetadataRpcs", rpc_method: "GetMetadata" }

describe("metrics", () => {
  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })("every service", (it) => {
    it.effect("serves the Prometheus text format, naming itself in target_info", () =>
      Effect.gen(function*() {
        for (
          const [service, ports] of [["metadata", MetadataServer.Ports], ["rating", RatingServer.Ports], [
            "movie",
            MovieServer.Ports
          ]] as const
        ) {
          const { http } = yield* ports
          const { status, contentType, text } = yield* scrape(http)
          assert.strictEqual(status, 200)
          assert.strictEqual(contentType, "text/plain; version=0.0.4; charset=utf-8")
          const families = PrometheusText.parse(text)
          assert.strictEqual(families.get("target_info")?.type, "gauge")
          assert.strictEqual(PrometheusText.value(families, "target_info", { service_name: service }), 1)
        }
      }))

    it.effect("counts calls by method and status and times them, for gRPC and for Effect RPC", () =>
      Effect.gen(function*() {
        const { http } = yield* MovieServer.Ports
        const metadata = yield* Grpc.client(
          v1Metadata.MetadataServiceClient,
          `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
        )
        yield* Grpc.call(Grpc.method(metadata, "putMetadata"), {
          metadata: { id: "heat", title: "Heat", description: "", director: "Michael Mann" }
        }, { metadata: yield* Tokens.editor })
        const movies = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${(yield* MovieServer.Ports).grpc}`)

        const before = yield* scrapeParsed(http)
        for (let i = 0; i < 3; i++) yield* Grpc.call(Grpc.method(movies, "getMovieDetails"), { movieId: "heat" })
        for (let i = 0; i < 2; i++) {
          yield* Effect.flip(Grpc.call(Grpc.method(movies, "getMovieDetails"), { movieId: "unknown" }))
        }
        yield* Effect.flip(Grpc.call(Grpc.method(movies, "getMovieDetails"), { movieId: " " }))
        const after = yield* scrapeParsed(http)

        const delta = (name: string, labels: Record<string, string>) =>
          (PrometheusText.value(after, name, labels) ?? 0) - (PrometheusText.value(before, name, labels) ?? 0)
        assert.strictEqual(after.get("rpc_server_calls_total")?.type, "counter")
        assert.strictEqual(after.get("rpc_server_call_duration_seconds")?.type, "histogram")
        assert.strictEqual(delta("rpc_server_calls_total", { ...gateway, status: "OK" }), 3)
        assert.strictEqual(delta("rpc_server_calls_total", { ...gateway, status: "NOT_FOUND" }), 2)
        assert.strictEqual(delta("rpc_server_calls_total", { ...gateway, status: "INVALID_ARGUMENT" }), 1)
        assert.strictEqual(delta("rpc_server_call_duration_seconds_count", gateway), 6)
        assert.isAbove(delta("rpc_server_call_duration_seconds_sum", gateway), 0)
        assert.strictEqual(delta("rpc_server_call_duration_seconds_bucket", { ...gateway, le: "+Inf" }), 6)
        // The gateway's calls to the metadata service, as that service served them over Effect RPC.
        assert.strictEqual(delta("rpc_server_calls_total", { ...getMetadata, status: "OK" }), 3)
        assert.strictEqual(delta("rpc_server_calls_total", { ...getMetadata, status: "MetadataNotFound" }), 2)
        assert.strictEqual(delta("rpc_server_call_duration_seconds_count", getMetadata), 5)
      }).pipe(Effect.scoped))

    it.effect("exports any Effect metric of the process without registering it", () =>
      Effect.gen(function*() {
        const { http } = yield* RatingServer.Ports
        const ingested = Metric.counter("test_events_ingested_total", { description: "events", incremental: true })
        const lag = Metric.gauge("test_consumer_lag", { description: "lag by partition" })
        yield* Metric.incrementBy(ingested, 5)
        yield* Metric.set(Metric.tagged(lag, "partition", "0"), 7)
        yield* Metric.set(Metric.tagged(lag, "partition", "1"), 0)
        const families = yield* scrapeParsed(http)
        assert.strictEqual(families.get("test_events_ingested_total")?.type, "counter")
        assert.strictEqual(families.get("test_events_ingested_total")?.help, "events")
        assert.strictEqual(PrometheusText.value(families, "test_events_ingested_total"), 5)
        assert.strictEqual(families.get("test_consumer_lag")?.type, "gauge")
        assert.strictEqual(PrometheusText.value(families, "test_consumer_lag", { partition: "0" }), 7)
        assert.strictEqual(PrometheusText.value(families, "test_consumer_lag", { partition: "1" }), 0)
      }))
  })
})
