/**
 * A service loads the libraries of the adapters its configuration chooses, and
 * no others: on the defaults (memory storage, in-process events, DNS discovery,
 * tracing off) none of MySQL's, Kafka's, the OpenTelemetry SDK's, the Prometheus
 * exposition's or YAML's. Each is imported by the composition root (or Telemetry,
 * Metrics, Config) only when chosen; a static import that brings one back fails
 * here. The ingestor loads kafkajs only when it publishes to Kafka. (Run from
 * source, as here, @effect/platform-node's HTTP server also loads undici for its
 * HTTP client: not an adapter, so not checked.)
 */
import { assert, describe, it } from "@effect/vitest"
import * as ImportRecorder from "@movieapp/testkit/ImportRecorder"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import { Effect } from "effect"

/** The packages behind the adapters a default configuration does not choose. */
const UNCHOSEN = [
  "mysql2",
  "@effect/sql-mysql2",
  "kafkajs",
  "@opentelemetry/sdk-trace-base",
  "@opentelemetry/sdk-trace-node",
  "@opentelemetry/exporter-trace-otlp-http",
  "@opentelemetry/exporter-prometheus",
  "yaml"
]

const defaults = {
  SERVER_HOST: "127.0.0.1",
  SERVER_GRPC_PORT: "0",
  SERVER_HTTP_PORT: "0",
  SERVER_RPC_PORT: "0",
  DISCOVERY: "dns",
  METADATA_ADDRESS: "127.0.0.1:1",
  RATING_ADDRESS: "127.0.0.1:2",
  AUTH: "disabled"
}

/** The packages `service` has loaded once it serves, started with `env`. */
const loadedBy = (service: "metadata" | "rating" | "movie", env: Record<string, string>) =>
  Effect.gen(function*() {
    const recorder = yield* ImportRecorder.make
    yield* ServiceProcess.startService(service, { ...defaults, ...env, ...recorder.env })
    return recorder.packages()
  }).pipe(Effect.scoped)

describe("what a service loads", () => {
  for (const service of ["metadata", "rating", "movie"] as const) {
    it.live(`${service} on the defaults: none of ${UNCHOSEN.join(", ")}`, () =>
      Effect.gen(function*() {
        const loaded = yield* loadedBy(service, {})
        // The record works: what every service uses is in it.
        assert.include([...loaded], "@grpc/grpc-js")
        assert.include([...loaded], "effect")
        assert.deepStrictEqual(UNCHOSEN.filter((name) => loaded.has(name)), [])
      }), 60_000)
  }

  // The ingestor runs once: what it loaded by the time it exits, having found no
  // one at the address it was given.
  const loadedByIngestor = (args: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const recorder = yield* ImportRecorder.make
      const ingestor = yield* ServiceProcess.start(
        "packages/ratingingestor/src/main.ts",
        recorder.env,
        [...args, "--generate", "1"]
      )
      const { code } = yield* ingestor.exited
      assert.notStrictEqual(code, 0, "nobody listens there: the ingestor cannot have published")
      return recorder.packages()
    }).pipe(Effect.scoped)

  it.live(
    "the ingestor publishing to the rating service: no kafkajs; publishing to Kafka: kafkajs",
    () =>
      Effect.gen(function*() {
        const toRating = yield* loadedByIngestor(["--rating-address", "127.0.0.1:1"])
        assert.include([...toRating], "effect")
        assert.isFalse(toRating.has("kafkajs"))
        const toKafka = yield* loadedByIngestor(["--kafka-brokers", "127.0.0.1:1"])
        assert.isTrue(toKafka.has("kafkajs"))
      }),
    120_000
  )

  it.live("with a trace endpoint, the OpenTelemetry SDK and its exporter are loaded", () =>
    Effect.gen(function*() {
      const loaded = yield* loadedBy("movie", { TRACING_ENDPOINT: "http://127.0.0.1:9" })
      assert.isTrue(loaded.has("@opentelemetry/sdk-trace-base"))
      assert.isTrue(loaded.has("@opentelemetry/exporter-trace-otlp-http"))
      assert.isFalse(loaded.has("mysql2"))
    }), 60_000)
})
